"""Starts one container's program the way a container runtime would, on this host (run as root).

    python podlaunch.py SPEC.json

SPEC holds: netns (a /run/netns path), hosts (file for /etc/hosts), expose (paths a non-root user
must reach though a parent directory hides them, e.g. /root/.cache/...), mounts
([{src, dst, ro}]), read_only_root, cwd, uid, gid, groups, no_new_privs, argv, env.

Everything happens in a private mount namespace, so the host's /etc/hosts, /tmp and / are never
changed: the pod's hosts file and volumes are bind mounts seen only by this process and its children.
"""
import ctypes
import json
import os
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_NO_NEW_PRIVS = 38

libc = ctypes.CDLL(None, use_errno=True)


def check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(src, dst, fstype, flags, data=None):
    check(libc.mount(src.encode() if src else None, dst.encode(), fstype.encode() if fstype else None, flags,
                     data.encode() if data else None), f"mount {src} -> {dst}")


def fail(message):
    sys.stderr.write(f"podlaunch: {message}\n")
    sys.stderr.flush()
    os._exit(127)


def lookup(argv0, path):
    if "/" in argv0:
        return argv0
    for directory in path.split(":"):
        candidate = os.path.join(directory or ".", argv0)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    fail(f'exec: "{argv0}": executable file not found in $PATH')


def mountinfo():
    points = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            fields = line.split()
            points.append(fields[4].replace("\\040", " "))
    return points


def main():
    with open(sys.argv[1]) as handle:
        spec = json.load(handle)

    if spec.get("netns"):
        fd = os.open(spec["netns"], os.O_RDONLY)
        check(libc.setns(fd, CLONE_NEWNET), "setns")
        os.close(fd)
    check(libc.unshare(CLONE_NEWNS), "unshare")
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    # Sources are opened before anything is mounted: a volume at /tmp must not hide a later
    # volume's source that lives under /tmp on the host.
    def handle(path):
        return f"/proc/self/fd/{os.open(path, os.O_PATH)}"

    hosts = handle(spec["hosts"]) if spec.get("hosts") else None
    keep = [(path, handle(path)) for path in spec.get("keep", []) if os.path.exists(path)]
    sources = [handle(m["src"]) for m in spec.get("mounts", [])]

    if hosts:
        mount(hosts, "/etc/hosts", None, MS_BIND)

    # A non-root user cannot pass a 0700 /root to reach the cached programs: put a traversable
    # tmpfs over the hidden parent, holding bind mounts of just the paths the programs need.
    if spec.get("expose"):
        stash = spec["stash"]
        stashed = []
        for i, path in enumerate(spec["expose"]):
            target = os.path.join(stash, str(i))
            os.makedirs(target, exist_ok=True)
            mount(path, target, None, MS_BIND | MS_REC)
            stashed.append((target, path))
        for hidden in spec["expose_over"]:
            mount("tmpfs", hidden, "tmpfs", 0, "mode=0755")
        for target, path in stashed:
            os.makedirs(path, exist_ok=True)
            mount(target, path, None, MS_MOVE)
        for hidden in spec["expose_over"]:
            mount(None, hidden, None, MS_REMOUNT | MS_BIND | MS_RDONLY)

    volumes = set()
    for m, source in zip(spec.get("mounts", []), sources):
        if not os.path.exists(m["dst"]):
            os.makedirs(m["dst"])  # inside an earlier volume (the harness made the others)
        mount(source, m["dst"], None, MS_BIND | MS_REC)
        if m.get("ro"):
            mount(None, m["dst"], None, MS_REMOUNT | MS_BIND | MS_RDONLY)
        volumes.add(os.path.realpath(m["dst"]))  # /var/run/x is /run/x in mountinfo

    # The programs themselves (the cached binaries and virtualenv) must stay visible even when they
    # live under a path a volume now covers (a cache under /tmp, say): mount them back on top.
    for path, source in keep:
        try:
            same = os.path.samestat(os.stat(path), os.stat(source))
        except OSError:
            same = False
        if not same:
            os.makedirs(path, exist_ok=True)
            mount(source, path, None, MS_BIND | MS_REC)
            volumes.add(os.path.realpath(path))

    if spec.get("read_only_root"):
        # The container's root file system is everything that is not a volume or a kernel file system.
        keep = ("/proc", "/sys", "/dev")
        for point in mountinfo():
            if point in volumes or point == "/etc/hosts" or any(point == k or point.startswith(k + "/") for k in keep):
                continue
            if any(point.startswith(v.rstrip("/") + "/") for v in volumes):
                continue
            try:
                mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY)
            except OSError:
                pass  # already read-only with flags we may not drop

    env = spec["env"]
    exe = lookup(spec["argv"][0], env.get("PATH", "/usr/bin:/bin"))
    try:
        os.chdir(spec.get("cwd") or "/")
    except OSError as error:
        fail(f"chdir to cwd (\"{spec.get('cwd')}\") set in config.json failed: {error.strerror}")
    os.setgroups(spec.get("groups", []))
    os.setgid(spec["gid"])
    os.setuid(spec["uid"])
    if spec.get("no_new_privs"):
        check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl")
    os.umask(0o022)
    try:
        os.execve(exe, spec["argv"], env)
    except OSError as error:
        fail(f"exec {exe}: {error.strerror}")


if __name__ == "__main__":
    try:
        main()
    except OSError as error:
        fail(str(error))
