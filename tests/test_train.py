import torch
import torch.nn.functional as F

from engine.stores import store
from engine.training.train import Diverged, TrainConfig, Trainer


def plain(**kw):
    return TrainConfig(**{"optimizer": "sgd", "schedule": "constant", "augment": False, "bf16": False,
                          "weight_decay": 0.0, "batch_size": 32, "epochs": 1, **kw})


def test_one_step_is_exactly_plain_sgd(mnist):
    trainer = Trainer(plain(learning_rate=0.05, train_size=256, architecture="mnist_recipe"), mnist)
    idx = torch.arange(32)
    before = {k: v.clone() for k, v in trainer.model.named_parameters()}
    # the oracle: gradients of the same loss on a copy of the model
    twin = store.models.build("mnist_recipe")
    twin.load_state_dict(trainer.model.state_dict())
    twin.train()
    x = torch.from_numpy(mnist.train.images[:32]).unsqueeze(1).float() / 255
    y = torch.from_numpy(mnist.train.labels[:32]).long()
    F.cross_entropy(twin(x), y).backward()
    trainer.step(idx)
    for name, p in trainer.model.named_parameters():
        expected = before[name] - 0.05 * dict(twin.named_parameters())[name].grad
        assert torch.allclose(p, expected, atol=1e-6), name


def test_momentum_and_adam_match_torch_optim(mnist):
    for optimizer in ("momentum", "adam"):
        trainer = Trainer(plain(optimizer=optimizer, learning_rate=0.01, train_size=128, architecture="mnist_recipe"), mnist)
        twin = store.models.build("mnist_recipe")
        twin.load_state_dict(trainer.model.state_dict())
        ref = (torch.optim.SGD(twin.parameters(), lr=0.01, momentum=0.9)
               if optimizer == "momentum" else torch.optim.Adam(twin.parameters(), lr=0.01))
        for step in range(3):
            idx = torch.arange(step * 32, step * 32 + 32)
            x = torch.from_numpy(mnist.train.images[idx.numpy()]).unsqueeze(1).float() / 255
            y = torch.from_numpy(mnist.train.labels[idx.numpy()]).long()
            twin.train()
            ref.zero_grad()
            F.cross_entropy(twin(x), y).backward()
            ref.step()
            trainer.step(idx)
        for (name, p), q in zip(trainer.model.named_parameters(), twin.parameters()):
            assert torch.allclose(p, q, atol=1e-5), (optimizer, name)


def test_a_tiny_run_learns(mnist):
    events = []
    trainer = Trainer(TrainConfig(epochs=2, train_size=3000, learning_rate=0.05), mnist, on_event=events.append)
    summary = trainer.run()
    assert summary["test_accuracy"] > 0.85
    assert [e["epoch"] for e in events if e["type"] == "epoch"] == [1, 2]
    batches = [e for e in events if e["type"] == "batch"]
    assert len(batches) == trainer.total_steps == 2 * 24
    assert batches[-1]["batch"] == batches[-1]["batches"] == 24


def test_a_huge_learning_rate_is_reported_as_diverged(mnist):
    trainer = Trainer(plain(learning_rate=1e30, train_size=512, architecture="mnist_recipe"), mnist)
    try:
        for b in range(16):
            trainer.step(torch.arange(b * 32, b * 32 + 32))
    except Diverged as exc:
        assert "loss became" in str(exc)
    else:
        raise AssertionError("a learning rate of 1e30 should make the loss NaN or infinite")


def test_bf16_autocast_only_where_the_cpu_has_native_bf16():
    """Without AVX512-BF16 or AMX, autocast to bf16 makes training slower (bench_training.py)."""
    from pathlib import Path

    from engine.training.train import TrainConfig, native_bf16
    flags = Path("/proc/cpuinfo").read_text().split()
    assert native_bf16() == ("avx512_bf16" in flags or "amx_bf16" in flags)
    assert TrainConfig().bf16 == native_bf16()
