"""Module semantics: attribute tracking, traversal order, modes, hooks, state dicts, repr."""
from collections import OrderedDict

import numpy as np
import pytest

import plugrad as P
import plugrad.module as M


class Block(M.Module):
    def __init__(self):
        super().__init__()
        self.fc = M.Linear(3, 4)
        self.scale = P.Parameter(np.ones(4, np.float32))
        self.count = P.Tensor(np.zeros(1, np.float32))  # a buffer

    def forward(self, x):
        return self.fc(x) * self.scale


class Net(M.Module):
    def __init__(self):
        super().__init__()
        self.first = Block()
        self.layers = [M.Linear(4, 4), M.ReLU()]
        self.heads = {"a": M.Linear(4, 2), "b": M.Linear(4, 1)}
        self.pair = (M.Linear(4, 4, bias=False), P.Parameter(np.zeros(2, np.float32)))
        self.size = 7  # plain attribute: not tracked

    def forward(self, x):
        x = self.first(x)
        for layer in self.layers:
            x = layer(x)
        return self.heads["a"](x)


def test_parameters_follow_registration_order_through_containers():
    names = [name for name, _ in Net().named_parameters()]
    assert names == ["first.fc.weight", "first.fc.bias", "first.scale", "layers.0.weight",
                     "layers.0.bias", "heads.a.weight", "heads.a.bias", "heads.b.weight",
                     "heads.b.bias", "pair.0.weight", "pair.1"]
    assert [n for n, _ in Net().named_buffers()] == ["first.count"]
    assert len(list(Net().parameters())) == 11


def test_children_and_modules():
    net = Net()
    assert [n for n, _ in net.named_children()] == ["first", "layers.0", "layers.1", "heads.a",
                                                  "heads.b", "pair.0"]
    names = [n for n, _ in net.named_modules()]
    assert names[:3] == ["", "first", "first.fc"] and len(names) == 8
    assert list(net.modules())[0] is net
    assert list(net.children())[0] is net.first


def test_reassignment_and_deletion_update_tracking():
    net = Net()
    net.first = M.Linear(3, 3)
    assert [n for n, _ in net.named_parameters()][:2] == ["first.weight", "first.bias"]
    net.layers.append(M.Linear(4, 5))  # a list is walked when asked
    assert "layers.2.weight" in dict(net.named_parameters())
    net.heads = None
    del net.pair
    assert not any(n.startswith(("heads", "pair")) for n, _ in net.named_parameters())


def test_shared_parameters_are_yielded_once_but_named_twice_in_state_dict():
    net = M.Sequential(M.Linear(2, 2))
    net.again = net[0]
    assert len(list(net.parameters())) == 2
    assert list(net.state_dict()) == ["0.weight", "0.bias", "again.weight", "again.bias"]


def test_assigning_a_module_before_init_is_an_error():
    class Broken(M.Module):
        def __init__(self):
            self.fc = M.Linear(1, 1)
            super().__init__()

    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Broken()


def test_train_eval_apply_and_zero_grad():
    net = Net()
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen[0] == "Net" and seen.count("Linear") == 5
    for p in net.parameters():
        p.grad = P.Tensor(np.ones(p.shape, np.float32))
    net.zero_grad()
    assert all(float(abs(p.grad).sum().item()) == 0 for p in net.parameters())


def test_forward_hooks_modify_and_can_be_removed():
    layer = M.Linear(2, 2)
    calls = []
    pre = layer.register_forward_pre_hook(lambda m, inputs: (inputs[0] * 0,))
    post = layer.register_forward_hook(lambda m, inputs, out: calls.append(out.shape) or out + 1)
    x = P.Tensor(np.ones((1, 2), np.float32))
    np.testing.assert_allclose(layer(x).numpy(), layer.bias.numpy()[None] + 1)
    assert calls == [(1, 2)]
    pre.remove()
    post.remove()
    post.remove()  # removing twice is harmless
    want = x.numpy() @ layer.weight.numpy().T + layer.bias.numpy()
    np.testing.assert_allclose(layer(x).numpy(), want, rtol=1e-6)
    assert calls == [(1, 2)]


def test_state_dict_round_trip_is_exact_and_in_place():
    source, target = Net(), Net()
    state = source.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    assert list(state) == [n for n, _ in source._all_tensors("", True)]
    weight = target.first.fc.weight
    target.load_state_dict(state)
    assert target.first.fc.weight is weight  # same Parameter object, new values
    for (name, a), b in zip(target.state_dict().items(), state.values()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    kept = source.state_dict(keep_var=True)
    assert kept["first.fc.weight"] is source.first.fc.weight


def test_load_state_dict_strict_errors_name_the_keys():
    net = Net()
    state = net.state_dict()
    del state["first.scale"]
    with pytest.raises(KeyError, match="missing keys.*first.scale"):
        Net().load_state_dict(state)
    state = net.state_dict()
    state["extra.weight"] = np.zeros(3)
    with pytest.raises(KeyError, match="unused keys.*extra.weight"):
        Net().load_state_dict(state)
    other = Net()
    before = other.first.fc.weight.numpy()
    other.load_state_dict(state, strict=False)  # extra ignored, the rest loaded
    assert not np.array_equal(before, other.first.fc.weight.numpy())


def test_mis_shaped_key_names_the_layer_and_both_shapes_and_changes_nothing():
    net = Net()
    state = net.state_dict()
    state["heads.a.weight"] = np.zeros((3, 4), np.float32)
    target = Net()
    before = target.first.fc.weight.numpy()
    with pytest.raises(ValueError) as info:
        target.load_state_dict(state)
    message = str(info.value)
    assert "'heads.a.weight'" in message and "Linear(in_features=4, out_features=2" in message
    assert "(2, 4)" in message and "(3, 4)" in message
    np.testing.assert_array_equal(target.first.fc.weight.numpy(), before)


def test_load_state_dict_accepts_a_closure():
    net = M.Linear(2, 3)
    net.load_state_dict(lambda name, t: np.full(t.shape, 2.0) if name == "bias" else None,
                        strict=False)
    np.testing.assert_array_equal(net.bias.numpy(), [2, 2, 2])


def test_repr_is_indented_and_megengine_shaped():
    text = repr(M.LeNet())
    assert text.splitlines()[0] == "LeNet("
    assert "  (conv1): Conv2d(1, 6, kernel_size=(5, 5))" in text
    assert "  (pool): MaxPool2d(kernel_size=2, stride=2, padding=0)" in text
    nested = repr(M.Sequential(OrderedDict(body=M.Sequential(M.ReLU()))))
    assert nested == "Sequential(\n  (body): Sequential(\n    (0): ReLU()\n  )\n)"
    assert repr(M.Conv2d(3, 8, 3, stride=2, padding=1, groups=1, bias=False)) == \
        "Conv2d(3, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=False)"


def test_sequential_indexing_and_ordered_dict():
    seq = M.Sequential(M.Linear(2, 3), M.ReLU(), M.Linear(3, 1))
    assert isinstance(seq[0], M.Linear) and isinstance(seq[-1], M.Linear) and len(seq) == 3
    tail = seq[1:]
    assert isinstance(tail, M.Sequential) and len(tail) == 2 and tail[1] is seq[2]
    x = P.Tensor(np.ones((4, 2), np.float32))
    np.testing.assert_allclose(seq(x).numpy(), seq[2](seq[1](seq[0](x))).numpy())
    named = M.Sequential(OrderedDict([("conv", M.Conv2d(1, 2, 3)), ("act", M.ReLU())]))
    assert named.conv is named[0]
    assert [n for n, _ in named.named_parameters()] == ["conv.weight", "conv.bias"]
    seq[1] = M.Sigmoid()
    assert isinstance(seq[1], M.Sigmoid)
    del seq[1]
    assert len(seq) == 2 and [n for n, _ in seq.named_children()] == ["0", "2"]
    with pytest.raises(IndexError):
        seq[5]
