# The code blocks of the basic-concepts tutorial (seed 000), with megengine replaced by plugrad.
import numpy as np
import plugrad as mge
import plugrad.functional as F
from plugrad import Tensor, tensor
from plugrad.autodiff import GradManager
import plugrad.optimizer as optim

py_list = range(5)
print(mge.tensor(py_list))
np_ndarray = np.arange(5).astype("float32")
print(mge.tensor(np_ndarray))
mge_tensor = F.arange(5)
print(mge_tensor)
print(mge_tensor.dtype)
print(type(mge_tensor))
new_tensor = mge_tensor.astype("float16")
print(new_tensor)
print(type(mge_tensor.numpy()))
print(tensor([1, 2, 3]))
print(Tensor([1., 2., 3.]))
matrix_tensor = mge.tensor([[1., 2., 3.],
                            [4., 5., 6.]])
print(matrix_tensor.shape)
print(matrix_tensor.size)
a = mge.tensor([[5.]])
print(a.item(), type(a.item()))
A = mge.tensor([[2., 4., 2.],
                [2., 4., 2.]])
B = mge.tensor([[1., 2., 1.],
                [1., 2., 1.]])
print(A + B)
print(A - B)
print(A * B)
print(A / B)
print(F.add(A, B))
print(F.sub(A, B))
print(F.mul(A, B))
print(F.div(A, B))
A = mge.tensor([[1., 2., 3.],
                [4., 5., 6.]])
print(A[1, :2])
print(A.shape)
A = A.reshape(3, 2)
print(A.shape)
A = mge.tensor(np.random.random((2, 3, 4, 5)))
print(A.shape)
A = A.reshape(2, -1, 5)
print(A.shape)
x = mge.tensor([[1., 3., 5.],
                [2., 4., 6.]])
w = mge.tensor([[1., 2.],
                [3., 4.],
                [5., 6.]])
p = F.matmul(x, w)
print(p)
w = mge.tensor([3.])
x = mge.tensor([2.])
b = mge.tensor(-1.)
gm = GradManager().attach([w, b])
with gm:
    p = F.mul(w, x)
    y = p + b
    gm.backward(y)
print(w.grad)
print(b.grad)
w = mge.Parameter([3.])
x = mge.Tensor([2.])
b = mge.Parameter(-1.)
print(type(w))
print(type(b))
gm = GradManager().attach([w, b])
with gm:
    p = F.mul(w, x)
    y = p + b
    gm.backward(y)
print(type(w.grad))
optimizer = optim.SGD([w, b], lr=0.01)
optimizer.step()
optimizer.clear_grad()
print(w, w.grad)
pred = np.array([3, 3, 3, 3]).astype(np.float32)
real = np.array([2, 8, 6, 1]).astype(np.float32)
loss = np.mean((pred - real) ** 2)
print(loss)
loss = F.loss.square_loss(pred, real)
print(loss)


def generate_random_examples(n=100, noise=5):
    w = np.random.randint(5, 10)
    b = np.random.randint(-10, 10)
    print("The real w: {}, b: {}".format(w, b))
    data = np.zeros((n,))
    label = np.zeros((n,))
    for i in range(n):
        data[i] = np.random.uniform(-10, 10)
        label[i] = w * data[i] + b + np.random.uniform(-noise, noise)
    return data, label


np.random.seed(20200326)
original_data, original_label = generate_random_examples()
epochs = 5
lr = 0.01
data = original_data
label = original_label
n = len(data)
w = 0
b = 0


def linear_model(x):
    return w * x + b


for epoch in range(epochs):
    loss = 0
    sum_grad_w = 0
    sum_grad_b = 0
    for i in range(n):
        pred = linear_model(data[i])
        loss += (pred - label[i]) ** 2
        sum_grad_w += 2 * (pred - label[i]) * data[i]
        sum_grad_b += 2 * (pred - label[i])
    loss = loss / n
    grad_w = sum_grad_w / n
    grad_b = sum_grad_b / n
    w = w - lr * grad_w
    b = b - lr * grad_b
    print("epoch = {}, w = {:.3f}, b = {:.3f}, loss = {:.3f}".format(epoch, w, b, loss))

data = mge.tensor(original_data)
label = mge.tensor(original_label)
w = mge.Parameter([0.0])
b = mge.Parameter([0.0])


def linear_model(x):
    return F.mul(w, x) + b


gm = GradManager().attach([w, b])
optimizer = optim.SGD([w, b], lr=lr)
for epoch in range(epochs):
    with gm:
        pred = linear_model(data)
        loss = F.loss.square_loss(pred, label)
        gm.backward(loss)
    optimizer.step().clear_grad()
    print("epoch = {}, w = {:.3f}, b = {:.3f}, loss = {:.3f}"
          .format(epoch, w.item(), b.item(), loss.item()))
