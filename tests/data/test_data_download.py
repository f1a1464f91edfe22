"""The mirror downloader, against a real HTTP server on 127.0.0.1 (no internet needed)."""

import hashlib
import http.server
import os
import re
import threading

import numpy as np
import pytest
from data_test_helpers import idx_bytes, make_mnist

from plugrad.data.dataset import MNIST, DownloadError
from plugrad.data.dataset.download import download_file


class _Handler(http.server.BaseHTTPRequestHandler):
    routes = {}  # path -> list of behaviours consumed one per request; last one repeats
    log = []

    def do_GET(self):  # noqa: N802 - http.server API
        type(self).log.append(self.path)
        plan = self.routes.get(self.path)
        if not plan:
            self.send_error(404)
            return
        kind, body = plan.pop(0) if len(plan) > 1 else plan[0]
        if kind == "500":
            self.send_error(500)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body) + (100 if kind == "short" else 0)))
        self.end_headers()
        self.wfile.write(body)  # for "short", the connection then closes early

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.routes = {}
    _Handler.log = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield "http://127.0.0.1:{}".format(httpd.server_address[1]), _Handler
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def payload(tmp_path):
    """Gzipped MNIST-format files and their MD5s, built in a source folder."""
    src = str(tmp_path / "src")
    images, labels = make_mnist(src, 6, train=True, gz=True)
    files = {}
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        data = open(os.path.join(src, name), "rb").read()
        files[name] = (data, hashlib.md5(data).hexdigest())
    return files, images, labels


def _mnist_class(files):
    return type(
        "LocalMNIST",
        (MNIST,),
        {
            "gz_md5": {k: v[1] for k, v in files.items()},
            "download_backoff": 0.0,
        },
    )


def _leftovers(root):
    return [f for f in os.listdir(root) if f.endswith(".part")]


def test_download_from_mirror_and_load(tmp_path, server, payload):
    url, handler = server
    files, images, labels = payload
    for name, (data, _) in files.items():
        handler.routes["/m1/" + name] = [("ok", data)]
    root = str(tmp_path / "root")
    ds = _mnist_class(files)(root, train=True, download=True, mirrors=[url + "/m1/"])
    assert len(ds) == 6
    np.testing.assert_array_equal(ds[5][0][:, :, 0], images[5])
    assert sorted(os.listdir(root)) == sorted(files)


def test_md5_mismatch_deleted_reported_next_mirror(tmp_path, server, payload, caplog):
    url, handler = server
    files, _, _ = payload
    for name, (data, _) in files.items():
        handler.routes["/bad/" + name] = [("ok", b"not the file")]
        handler.routes["/good/" + name] = [("ok", data)]
    root = str(tmp_path / "root")
    with caplog.at_level("INFO", logger="plugrad"):
        ds = _mnist_class(files)(root, mirrors=[url + "/bad", url + "/good"])
    assert re.search("MD5 mismatch.*deleted", caplog.text)
    assert f"downloading {url}/bad/" in caplog.text and f"downloading {url}/good/" in caplog.text
    assert len(ds) == 6 and not _leftovers(root)


def test_md5_mismatch_everywhere_fails_without_files(tmp_path, server, payload, caplog):
    url, handler = server
    files, _, _ = payload
    for name in files:
        handler.routes["/bad/" + name] = [("ok", b"garbage")]
    root = str(tmp_path / "root")
    with caplog.at_level("WARNING", logger="plugrad"), pytest.raises(FileNotFoundError) as info:
        _mnist_class(files)(root, mirrors=[url + "/bad/"])
    assert "MD5 mismatch" in caplog.text
    text = str(info.value)
    assert "MD5 mismatch" in text and root in text
    assert "train-images-idx3-ubyte.gz" in text and "train-labels-idx1-ubyte.gz" in text
    assert os.listdir(root) == []  # nothing that looks complete, no temp files


def test_retries_transient_errors(tmp_path, server, payload):
    url, handler = server
    files, _, _ = payload
    data, md5 = files["train-images-idx3-ubyte.gz"]
    handler.routes["/m/train-images-idx3-ubyte.gz"] = [
        ("500", b""),
        ("short", data[:50]),
        ("ok", data),
    ]
    path = download_file(
        "train-images-idx3-ubyte.gz", [url + "/m/"], str(tmp_path), md5=md5, retries=2, backoff=0
    )
    assert open(path, "rb").read() == data
    assert handler.log.count("/m/train-images-idx3-ubyte.gz") == 3
    assert not _leftovers(str(tmp_path))


def test_truncated_download_never_looks_complete(tmp_path, server, payload):
    url, handler = server
    files, _, _ = payload
    data, md5 = files["train-images-idx3-ubyte.gz"]
    handler.routes["/m/train-images-idx3-ubyte.gz"] = [("short", data[:100])]
    dest = str(tmp_path / "dest")
    with pytest.raises(DownloadError, match="incomplete"):
        download_file(
            "train-images-idx3-ubyte.gz", [url + "/m/"], dest, md5=None, retries=1, backoff=0
        )
    assert os.listdir(dest) == []


def test_404_moves_to_next_mirror_without_retry(tmp_path, server, payload):
    url, handler = server
    files, _, _ = payload
    data, md5 = files["train-labels-idx1-ubyte.gz"]
    handler.routes["/b/train-labels-idx1-ubyte.gz"] = [("ok", data)]
    download_file(
        "train-labels-idx1-ubyte.gz",
        [url + "/a/", url + "/b/"],
        str(tmp_path),
        md5=md5,
        retries=3,
        backoff=0,
    )
    assert handler.log == ["/a/train-labels-idx1-ubyte.gz", "/b/train-labels-idx1-ubyte.gz"]


def test_offline_error_lists_files_and_folder(tmp_path, payload):
    files, _, _ = payload
    root = str(tmp_path / "root")
    cls = _mnist_class(files)
    cls.download_retries = 0
    with pytest.raises(FileNotFoundError) as info:
        cls(root, train=True, mirrors=["http://127.0.0.1:9/"], timeout=2)  # port 9: refused
    text = str(info.value)
    assert "offline" in text and root in text
    assert "train-images-idx3-ubyte.gz" in text and "train-labels-idx1-ubyte.gz" in text


def test_file_url_mirror_and_custom_opener(tmp_path, payload):
    files, _, _ = payload
    src = tmp_path / "mirror"
    src.mkdir()
    for name, (data, _) in files.items():
        (src / name).write_bytes(data)
    root = str(tmp_path / "root")
    ds = _mnist_class(files)(root, mirrors=[src.as_uri() + "/"])
    assert len(ds) == 6
    calls = []

    def opener(url, timeout):
        calls.append((url, timeout))
        raise OSError("no network in this test")

    with pytest.raises(DownloadError, match="no network in this test"):
        download_file(
            "x.gz",
            ["http://example.invalid/"],
            str(tmp_path),
            retries=1,
            backoff=0,
            opener=opener,
            timeout=7,
        )
    assert calls == [("http://example.invalid/x.gz", 7)] * 2


def test_download_only_missing_file(tmp_path, server, payload):
    url, handler = server
    files, _, labels = payload
    root = str(tmp_path / "root")
    os.makedirs(root)
    with open(os.path.join(root, "train-labels-idx1-ubyte"), "wb") as f:
        f.write(idx_bytes(labels, 2049))  # present (raw): must not be fetched
    data, _ = files["train-images-idx3-ubyte.gz"]
    handler.routes["/m/train-images-idx3-ubyte.gz"] = [("ok", data)]
    ds = _mnist_class(files)(root, mirrors=[url + "/m/"])
    assert len(ds) == 6 and handler.log == ["/m/train-images-idx3-ubyte.gz"]
