"""The page modules import what they use from one place: every imported name exists in the module
named, nothing imported goes unused, and the shared helpers (dom.js, format.js, the palette in
plot.js, url-state.js) are not copied back into a page."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parent.parent / "static" / "js"
IMPORT = re.compile(r'import \{([^}]*)\} from "\./([\w-]+\.js)";')
HELPERS = {  # a page must import these, never define its own
    r"const \$ = \(id\) => document\.getElementById": "dom.js",
    r"const fmt = ": "format.js",
    r"(?:const|function) percent\b": "format.js",
    r'"#0072B2", "#E69F00"': "plot.js (COLOURS)",
    r"new URLSearchParams\(location\.search\)\.get\(\"(?:tab|lr)\"\)": "url-state.js",
    r"atob\(": "render.js (decodeImage)",
}
OWNERS = {"dom.js", "format.js", "plot.js", "render.js", "url-state.js"}


def modules() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(JS.glob("*.js"))}


def exported(source: str) -> set[str]:
    names = set(re.findall(r"export (?:async )?(?:const|function|class|let)\s+([A-Za-z_$][\w$]*)", source))
    for group in re.findall(r"export \{([^}]*)\}", source):
        names |= {item.strip().split(" as ")[-1] for item in group.split(",")}
    return names


@pytest.mark.parametrize("name", sorted(p.name for p in JS.glob("*.js")))
def test_every_import_exists_and_is_used(name):
    found = modules()
    source = found[name]
    body = re.sub(r"^import .*$", "", source, flags=re.M)
    for names, module in IMPORT.findall(source):
        assert module in found, f"{name} imports {module}, which does not exist"
        for item in filter(None, (i.strip() for i in names.split(","))):
            original, local = item.split(" as ")[0], item.split(" as ")[-1]
            assert original in exported(found[module]), f"{name} imports {original} that {module} does not export"
            assert re.search(rf"(?<![\w$]){re.escape(local)}(?![\w$])", body), f"{name} imports {local} but never uses it"


@pytest.mark.parametrize("pattern, home", HELPERS.items())
def test_shared_helpers_are_not_copied_into_pages(pattern, home):
    copies = [name for name, source in modules().items() if name not in OWNERS and re.search(pattern, source)]
    assert copies == [], f"{copies} define their own copy; import it from {home}"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is installed by scripts/setup.sh")
def test_every_module_parses_as_a_module(tmp_path):
    """node --check on each file as an ES module (a .js file is checked as a script, which misses
    e.g. one name declared twice)."""
    for path in JS.glob("*.js"):
        copy = tmp_path / (path.stem + ".mjs")
        copy.write_text(path.read_text())
        checked = subprocess.run(["node", "--check", str(copy)], capture_output=True, text=True)
        assert checked.returncode == 0, f"{path.name}: {checked.stderr}"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is installed by scripts/setup.sh")
def test_render_decodes_the_one_image_form_the_server_encodes(tmp_path):
    """render.js decodeImage reads what engine.imageio.encode writes: channels first, plane after
    plane, each row by row (and /api/predict's readable rows of ints as one plane)."""
    import json

    import numpy as np

    from engine.imageio import diverging, encode
    (tmp_path / "render.mjs").write_text((JS / "render.js").read_text())
    colour = np.arange(3 * 2 * 4, dtype=np.uint8).reshape(3, 2, 4)
    grey = np.array([[0, 255, 7], [9, 10, 11]], np.uint8)
    cases = {"colour": encode(colour), "grey": encode(grey), "rows": grey.tolist(),
             "maps": diverging(np.array([[[-2.0, 0.0]], [[1.0, 2.0]]]))}
    script = tmp_path / "check.mjs"
    script.write_text("import { decodeImage } from './render.mjs';\n"
                      f"const cases = {json.dumps(cases)};\n"
                      "const out = {};\n"
                      "for (const [k, v] of Object.entries(cases)) { const d = decodeImage(v);\n"
                      "  out[k] = { w: d.width, h: d.height, c: d.channels, data: Array.from(d.data),\n"
                      "    last: Array.from(d.plane(d.channels - 1)) }; }\n"
                      "let refused = false; try { decodeImage({ ...cases.grey, channels: 3 }); } catch { refused = true; }\n"
                      "out.refused = refused;\n"
                      "console.log(JSON.stringify(out));\n")
    run = subprocess.run(["node", str(script)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["colour"] == {"w": 4, "h": 2, "c": 3, "data": colour.ravel().tolist(), "last": colour[2].ravel().tolist()}
    assert out["grey"] == out["rows"] == {"w": 3, "h": 2, "c": 1, "data": grey.ravel().tolist(), "last": grey.ravel().tolist()}
    assert out["maps"]["c"] == 2 and out["maps"]["data"] == [0, 128, 191, 255]  # 128 = 0, scale 2
    assert out["refused"]  # a byte count that does not match the size is an error, not a garbled image
