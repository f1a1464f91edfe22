# The code blocks of the English basic-concepts tutorial (seed 002), megengine -> plugrad.
# The doctest lines (>>> x) are printed with repr(), as the interactive prompt would.
import numpy as np
from plugrad import Tensor, Parameter
import plugrad.functional as F
from plugrad.autodiff import GradManager
import plugrad.optimizer as optim

print(repr(Tensor([[1, 2, 3], [4, 5, 6]])))
a = Tensor([[2, 4, 2], [2, 4, 2]])
b = Tensor([[2, 4, 2], [1, 2, 1]])
print(repr(a + b))
print(repr(a - b))
print(repr(a * b))
print(repr(a / b))
a = Tensor([[1, 2, 3], [4, 5, 6]])
b = a.reshape((3, 2))
print(a.shape, b.shape)
b = F.reshape(a, (3, 2))
print(a.shape, b.shape)
w, x, b = Tensor(3.), Tensor(2.), Tensor(-1.)
p = w * x
y = p + b
dydp = Tensor(1.)
dpdw = x
dydw = dydp * dpdw
print(repr(dydw))
print(w.grad, b.grad)
w, x, b = Tensor(3.), Tensor(2.), Tensor(-1.)
gm = GradManager().attach([w, b])
with gm:
    y = w * x + b
    gm.backward(y)
print(repr(w.grad))
with gm:
    y = w * x + b
    gm.backward(y)  # w.grad += backward_grad_for_w
print(repr(w.grad))
x = Tensor(2.)
w, b = Parameter(3.), Parameter(-1.)
gm = GradManager().attach([w, b])
with gm:
    y = w * x + b
    gm.backward(y)
print(repr(w))
print(repr(w.grad))
x = Tensor(2.)
w, b = Parameter(3.), Parameter(-1.)
gm = GradManager().attach([w, b])
optimizer = optim.SGD([w, b], lr=0.01)
with gm:
    y = w * x + b
    gm.backward(y)
    optimizer.step().clear_grad()
print(repr(w))
try:
    optim.SGD([Tensor(3.)], lr=0.01)
except TypeError as error:
    print(f"TypeError: {error}")
pred = np.array([3., 3., 3., 3.])
real = np.array([2., 8., 6., 1.])
np_loss = np.mean((pred - real) ** 2)
print(np_loss)
mge_loss = F.nn.square_loss(Tensor(pred), Tensor(real))
print(repr(mge_loss))


def get_point_examples(n=100, noise=5):
    rng = np.random.RandomState(2022)
    x = rng.uniform(-10, 10, n)
    return x, 5 * x + rng.uniform(-noise, noise, n)


x, y = get_point_examples()
print(x.shape, y.shape)
w = 0.0
b = 0.0


def f(x):
    return w * x + b


nums_epoch = 5
for epoch in range(nums_epoch):
    w_grad = 0
    b_grad = 0
    pred = f(x)
    loss = ((pred - y) ** 2).mean()
    w_grad += (2 * (pred - y) * x).mean()
    b_grad += (2 * (pred - y)).mean()
    lr = 0.01
    w = w - lr * w_grad
    b = b - lr * b_grad
    print(f"Epoch = {epoch}, \
           w = {w:.3f}, \
           b = {b:.3f}, \
           loss = {loss:.3f}")

x, y = get_point_examples()
w = Parameter(0.0)
b = Parameter(0.0)


def f(x):
    return w * x + b


gm = GradManager().attach([w, b])
optimizer = optim.SGD([w, b], lr=0.01)
nums_epoch = 5
for epoch in range(nums_epoch):
    x = Tensor(x)
    y = Tensor(y)
    with gm:
        pred = f(x)
        loss = F.nn.square_loss(pred, y)
        gm.backward(loss)
        optimizer.step().clear_grad()
    print(f"Epoch = {epoch}, \
            w = {w.item():.3f}, \
            b = {b.item():.3f}, \
            loss = {loss.item():.3f}")
