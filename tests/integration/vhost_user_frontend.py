#!/usr/bin/env python3
"""A hostile vhost-user front-end for vhost_user_hostile.sh.

Connects to an `xover vhost-user` socket once per case and sends what a
broken or malicious front-end might: truncated and oversized messages,
wrong versions, fds where none belong, memory tables and ring addresses
out of range, unknown requests, a ring whose descriptors point outside
the memory it shared. After each case the back-end must still answer a
fresh connection's GET_FEATURES. Prints one line a case; exits 1 if the
back-end stopped answering.

    vhost_user_frontend.py SOCKET           every case
    vhost_user_frontend.py SOCKET --alive   only: does it answer?
"""
import mmap
import os
import socket
import struct
import sys
import time

GET_FEATURES, SET_FEATURES, SET_OWNER = 1, 2, 3
SET_MEM_TABLE, SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_BASE = 5, 8, 9, 10
SET_VRING_KICK, SET_VRING_CALL, GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES = 12, 13, 15, 16
SET_VRING_ENABLE = 18
VERSION = 1
VERSION_1 = 1 << 32
PROTOCOL_FEATURES = 1 << 30
SEAL_SHRINK = 0x0002

sock_path = sys.argv[1]


def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(sock_path)
    return s


def send(s, request, payload=b"", fds=(), flags=VERSION):
    data = struct.pack("<III", request, flags, len(payload)) + payload
    if fds:
        socket.send_fds(s, [data], list(fds))
    else:
        s.sendall(data)


def reply(s):
    head = s.recv(12, socket.MSG_WAITALL)
    if len(head) < 12:
        return None
    request, flags, size = struct.unpack("<III", head)
    return request, flags, s.recv(size, socket.MSG_WAITALL) if size else b""


def closed_by_backend(s):
    """True once the back-end closed the connection (it refused the session)."""
    try:
        return s.recv(64) == b""
    except ConnectionResetError:  # closed with our bytes unread
        return True
    except socket.timeout:
        return False


def alive():
    """The back-end answers GET_FEATURES on a new connection."""
    for _ in range(50):
        try:
            with connect() as s:
                send(s, GET_FEATURES)
                r = reply(s)
                return r is not None and r[0] == GET_FEATURES and len(r[2]) == 8
        except (ConnectionRefusedError, FileNotFoundError):
            time.sleep(0.1)  # still closing the previous session
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            return False  # it closed this connection: it serves another front-end
    return False


def guest_memory(size=1 << 20, seal=True):
    fd = os.memfd_create("hostile-guest", os.MFD_ALLOW_SEALING if seal else 0)
    os.ftruncate(fd, size)
    if seal:
        import fcntl
        fcntl.fcntl(fd, 1033, SEAL_SHRINK)  # F_ADD_SEALS
    return fd


def region(gpa, size, uva, offset):
    return struct.pack("<QQQQ", gpa, size, uva, offset)


def mem_table(regions):
    return struct.pack("<II", len(regions), 0) + b"".join(regions)


def vring_state(index, num):
    return struct.pack("<II", index, num)


def vring_addr(index, desc, used, avail):
    return struct.pack("<IIQQQQ", index, 0, desc, used, avail, 0)


UVA = 0x7F0000000000  # where this "front-end" says its guest memory is mapped


def set_up(s, memfd, desc, avail, used, num=256):
    """A full device start: features, memory, both rings, enable."""
    send(s, SET_FEATURES, struct.pack("<Q", VERSION_1 | PROTOCOL_FEATURES))
    send(s, SET_PROTOCOL_FEATURES, struct.pack("<Q", 0))
    send(s, SET_MEM_TABLE, mem_table([region(0, 1 << 20, UVA, 0)]), [memfd])
    kicks = []
    for q in range(2):
        send(s, SET_VRING_NUM, vring_state(q, num))
        send(s, SET_VRING_BASE, vring_state(q, 0))
        send(s, SET_VRING_ADDR, vring_addr(q, UVA + desc[q], UVA + used[q], UVA + avail[q]))
        kick, call = os.eventfd(0), os.eventfd(0)
        kicks.append(kick)
        send(s, SET_VRING_KICK, struct.pack("<Q", q), [kick])
        send(s, SET_VRING_CALL, struct.pack("<Q", q), [call])
        os.close(call)
    for q in range(2):
        send(s, SET_VRING_ENABLE, vring_state(q, 1))
    return kicks


def case_truncated_header(s):
    s.sendall(b"\x01\x00\x00")
    s.shutdown(socket.SHUT_WR)


def case_truncated_payload(s):
    s.sendall(struct.pack("<III", SET_FEATURES, VERSION, 8) + b"\x00\x00")
    s.shutdown(socket.SHUT_WR)


def case_bad_version(s):
    send(s, GET_FEATURES, flags=2)


def case_reply_flag(s):
    send(s, GET_FEATURES, flags=VERSION | 4)


def case_oversized(s):
    s.sendall(struct.pack("<III", SET_MEM_TABLE, VERSION, 1 << 20))


def case_fd_where_none_belongs(s):
    fd = os.eventfd(0)
    send(s, GET_FEATURES, fds=[fd])
    os.close(fd)


def case_too_many_regions(s):
    fds = [guest_memory(4096) for _ in range(8)]
    regions = [region(i << 12, 4096, UVA + (i << 12), 0) for i in range(9)]
    send(s, SET_MEM_TABLE, mem_table(regions), fds)
    for fd in fds:
        os.close(fd)


def case_region_beyond_file(s):
    fd = guest_memory(4096)
    send(s, SET_MEM_TABLE, mem_table([region(0, 1 << 30, UVA, 0)]), [fd])
    os.close(fd)


def case_region_wraps(s):
    fd = guest_memory(4096)
    send(s, SET_MEM_TABLE, mem_table([region(2**64 - 4096, 8192, UVA, 0)]), [fd])
    os.close(fd)


def case_no_such_ring(s):
    send(s, SET_VRING_NUM, vring_state(7, 256))


def case_ring_size_not_power_of_two(s):
    send(s, SET_VRING_NUM, vring_state(0, 100))


def case_unknown_request(s):
    send(s, 99, struct.pack("<Q", 0))


def case_ring_outside_memory(s):
    fd = guest_memory()
    kicks = set_up(s, fd, desc=[0x10000, 0x20000], avail=[0x11000, 0x21000], used=[1 << 21, 0x22000])
    for k in kicks:
        os.close(k)
    os.close(fd)


def case_descriptors_outside_memory(s):
    """A started device whose TX ring's descriptor points past the memory:
    the device refuses the chain (DEVICE_NEEDS_RESET), touches nothing."""
    fd = guest_memory()
    mem = mmap.mmap(fd, 1 << 20)
    desc, avail, used = 0x20000, 0x21000, 0x22000
    # descriptor 0: addr far outside the 1 MiB this front-end shared
    struct.pack_into("<QIHH", mem, desc, 0x7FFF_0000_0000, 1500, 0, 0)
    struct.pack_into("<HHH", mem, avail, 0, 1, 0)  # flags, idx=1, ring[0]=0
    kicks = set_up(s, fd, desc=[0x10000, desc], avail=[0x11000, avail], used=[0x12000, used])
    os.eventfd_write(kicks[1], 1)
    time.sleep(0.3)
    assert struct.unpack_from("<H", mem, used + 2)[0] == 0, "a chain outside memory was used"
    for k in kicks:
        os.close(k)
    mem.close()
    os.close(fd)


def case_unshareable_memory(s):
    """A crossover NIC cannot share unsealed memory: the session ends."""
    fd = guest_memory(seal=False)
    kicks = set_up(s, fd, desc=[0x10000, 0x20000], avail=[0x11000, 0x21000], used=[0x12000, 0x22000])
    for k in kicks:
        os.close(k)
    os.close(fd)


if sys.argv[2:] == ["--alive"]:
    sys.exit(0 if alive() else 1)

cases = [
    case_truncated_header, case_truncated_payload, case_bad_version, case_reply_flag, case_oversized,
    case_fd_where_none_belongs, case_too_many_regions, case_region_beyond_file, case_region_wraps,
    case_no_such_ring, case_ring_size_not_power_of_two, case_unknown_request, case_ring_outside_memory,
    case_descriptors_outside_memory, case_unshareable_memory,
]
failed = 0
for case in cases:
    name = case.__name__[len("case_"):]
    try:
        with connect() as s:
            case(s)
            refused = closed_by_backend(s)
    except Exception as e:  # the case itself broke: a bug in this script
        print(f"FAIL {name}: {e!r}")
        failed += 1
        continue
    if not alive():
        print(f"FAIL {name}: the back-end stopped answering")
        sys.exit(1)
    print(f"ok {name}: {'session refused' if refused else 'session kept'}, back-end answers")
sys.exit(1 if failed else 0)
