"""Saving to a path: a save killed outright leaves the old file intact and its temporary file
is removed by the next save of the same target (and no other file is); new files honour the
umask; errors name the target."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest

import plugrad as P
from plugrad import _atomic_file

# A save that stalls halfway through writing its archive (pickling the last value), so a
# test can kill it at a known point: after its temporary file holds part of the archive.
STALLING_SAVE = textwrap.dedent("""
    import sys, time
    import numpy as np
    import plugrad as P

    class Stall:
        def __reduce__(self):
            print("writing", flush=True)
            time.sleep(600)

    P.save({"w": np.ones(100_000), "stall": Stall()}, sys.argv[1], allow_pickle=True)
""")


def temps_of(folder, target):
    pattern = _atomic_file.temp_name_pattern(target)
    return sorted(name for name in os.listdir(folder) if pattern.fullmatch(name))


def test_a_killed_save_keeps_the_old_file_and_the_next_save_removes_its_temp(tmp_path):
    path = tmp_path / "ckpt.pkg"
    P.save({"version": 1}, path)
    child = subprocess.Popen([sys.executable, "-c", STALLING_SAVE, str(path)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "writing\n"
        left, = temps_of(tmp_path, "ckpt.pkg")
        assert f"-{child.pid}." in left and os.path.getsize(tmp_path / left) > 800_000
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert os.path.exists(tmp_path / left)  # nobody could clean up after the killed writer
    assert P.load(path) == {"version": 1}
    P.save({"version": 2}, path)
    assert sorted(os.listdir(tmp_path)) == ["ckpt.pkg"]
    assert P.load(path) == {"version": 2}


def dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_only_stale_temps_of_the_same_target_on_this_host_are_removed(tmp_path):
    host, gone = _atomic_file._HOST, dead_pid()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        names = {
            f".ckpt.pkg.{host}-{gone}.0a1b2c3d.tmp": False,   # stale: removed
            f".ckpt.pkg.{host}-{live.pid}.0a1b2c3d.tmp": True,  # a live writer's
            f".ckpt.pkg.{host}-{os.getpid()}.0a1b2c3d.tmp": True,  # this process's (a thread)
            f".ckpt.pkg.otherhost{host}-{gone}.0a1b2c3d.tmp": True,  # another host's
            f".other.pkg.{host}-{gone}.0a1b2c3d.tmp": True,  # another target's
            f".ckpt.pkg.x{host}.{host}-{gone}.0a1b2c3d.tmp": True,  # not the pattern
            ".ckpt.pkg.k2j3h4g5.tmp": True,  # not recognisably plugrad's
        }
        for name in names:
            (tmp_path / name).write_bytes(b"partial")
        P.save({"x": 1}, tmp_path / "ckpt.pkg")
        kept = set(os.listdir(tmp_path))
    finally:
        live.kill()
        live.wait()
    assert {name for name, keep in names.items() if keep} | {"ckpt.pkg"} == kept


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
@pytest.mark.parametrize("suffix", [".pkg", ".safetensors"])
def test_saved_files_honour_the_umask(tmp_path, umask, suffix):
    old = os.umask(umask)
    try:
        P.save({"w": np.ones(2, np.float32)}, tmp_path / f"f{suffix}")
    finally:
        os.umask(old)
    assert os.stat(tmp_path / f"f{suffix}").st_mode & 0o777 == 0o666 & ~umask


def save_as_nobody(obj, path):
    """``P.save`` in a forked process running as an unprivileged user; its error message."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        message = "saved"
        try:
            os.setgid(65534)
            os.setuid(65534)
            P.save(obj, path)
        except BaseException as exc:
            message = f"{type(exc).__name__}: {exc}"
        os.write(write, message.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        message = pipe.read()
    os.waitpid(pid, 0)
    return message


def test_saving_into_a_read_only_folder_names_the_target():
    base = tempfile.mkdtemp()  # in /tmp, which every user may enter
    os.chmod(base, 0o755)
    folder, writable = os.path.join(base, "ro"), os.path.join(base, "rw")
    os.mkdir(folder, 0o555)
    os.mkdir(writable)
    os.chmod(writable, 0o777)
    target = os.path.join(folder, "ckpt.pkg")
    try:
        if os.geteuid() != 0:
            with pytest.raises(PermissionError) as error:
                P.save({"x": 1}, target)
            message = f"PermissionError: {error.value}"
        else:  # root writes anywhere: save as an unprivileged user in a real process
            message = save_as_nobody({"x": 1}, target)
            # the same user can save beside it: only the folder's mode refuses the first
            assert save_as_nobody({"x": 1}, os.path.join(writable, "ckpt.pkg")) == "saved"
        assert message.startswith("PermissionError: [Errno 13] save: cannot write "
                                  f"'{target}': Permission denied"), message
        assert ".tmp" not in message and "must exist and be writable" in message
        assert os.listdir(folder) == []
    finally:
        os.chmod(folder, 0o755)
        shutil.rmtree(base)
