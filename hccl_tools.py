"""Write the RANK_TABLE_FILE (HCCL rank table JSON) for the Ascend cards of this server.

    python hccl_tools.py --device_num "[0,8)"

The cards' network addresses come from the ``address_N=IP`` lines of /etc/hccn.conf. The range
``[a,b)`` picks positions in ``--visible_devices`` (default 0..7); ranks are numbered 0..n-1 in
that order. The file is named ``hccl_{n}p_{device ids}_{server ip}.json``.
"""
import argparse
import fcntl
import ipaddress
import json
import os
import re
import socket
import struct
import sys
import tempfile

MAX_DEVICES_PER_SERVER = 8
_RANGE_PATTERN = re.compile(r"\[\s*(\d+)\s*,\s*(\d+)\s*\)")
_ADDRESS_PATTERN = re.compile(r"address_(\d+)\s*=\s*(\S+)")
_SIOCGIFADDR = 0x8915  # Linux ioctl: the IPv4 address of a network interface


def parse_device_range(text):
    """``"[0,8)"`` -> ``(0, 8)``: a half-open range with 0 <= start < end <= 8."""
    match = _RANGE_PATTERN.fullmatch(text.strip())
    if not match:
        raise ValueError(f"--device_num {text!r} is not a half-open range like \"[0,8)\"")
    start, end = int(match.group(1)), int(match.group(2))
    if not 0 <= start < end <= MAX_DEVICES_PER_SERVER:
        raise ValueError(f"--device_num {text!r}: need 0 <= start < end <= "
                         f"{MAX_DEVICES_PER_SERVER}")
    return start, end


def parse_visible_devices(text):
    """``"0,1,2,3"`` -> ``['0', '1', '2', '3']``: distinct device ids."""
    device_ids = [part.strip() for part in text.split(",")]
    if not all(part.isdigit() for part in device_ids):
        raise ValueError(f"--visible_devices {text!r} is not a comma-separated list of device ids")
    device_ids = [str(int(part)) for part in device_ids]
    if len(set(device_ids)) != len(device_ids):
        raise ValueError(f"--visible_devices {text!r} names a device twice")
    return device_ids


def select_devices(device_range, visible_devices):
    start, end = device_range
    if end > len(visible_devices):
        raise ValueError(f"--device_num [{start},{end}) is outside the {len(visible_devices)} "
                         f"visible devices ({','.join(visible_devices)})")
    return visible_devices[start:end]


def read_device_ips(hccn_conf):
    """``{device id: device IP}`` from the ``address_N=IP`` lines; other lines are ignored."""
    if not os.path.isfile(hccn_conf):
        raise FileNotFoundError(f"{hccn_conf} not found (it lists the cards' addresses; "
                                "pass --hccn_conf if it is elsewhere)")
    device_ips = {}
    with open(hccn_conf, encoding="utf-8") as conf_file:
        for line_number, line in enumerate(conf_file, start=1):
            match = _ADDRESS_PATTERN.fullmatch(line.strip())
            if not match:
                continue
            device_id, device_ip = str(int(match.group(1))), match.group(2)
            try:
                ipaddress.IPv4Address(device_ip)
            except ValueError:
                raise ValueError(f"{hccn_conf}:{line_number}: {device_ip!r} is not an IPv4 "
                                 "address") from None
            device_ips[device_id] = device_ip
    return device_ips


def build_rank_table(server_ip, device_ids, device_ips, hccn_conf="hccn.conf"):
    """The rank table dict (every value a string, as HCCL expects); rank i is ``device_ids[i]``."""
    missing = [device_id for device_id in device_ids if device_id not in device_ips]
    if missing:
        raise ValueError(f"{hccn_conf} has no address_N line for device(s) {','.join(missing)}")
    devices = [{"device_id": device_id, "device_ip": device_ips[device_id], "rank_id": str(rank)}
               for rank, device_id in enumerate(device_ids)]
    return {
        "version": "1.0",
        "server_count": "1",
        "server_list": [{"server_id": server_ip, "device": devices, "host_nic_ip": "reserve"}],
        "status": "completed",
    }


def rank_table_filename(device_ids, server_ip):
    return f"hccl_{len(device_ids)}p_{''.join(device_ids)}_{server_ip}.json"


def _interface_ipv4(sock, interface_name):
    request = struct.pack("256s", interface_name.encode()[:15])
    reply = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, request)
    return socket.inet_ntoa(reply[20:24])  # struct ifreq: 16-byte name, then sockaddr_in


def default_server_ip():
    """The first non-loopback IPv4 address of this host's interfaces, else 127.0.0.1.

    Read from the kernel (an ioctl per interface): nothing is sent on the network.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, interface_name in socket.if_nameindex():
            try:
                address = _interface_ipv4(sock, interface_name)
            except OSError:  # the interface has no IPv4 address
                continue
            if not ipaddress.IPv4Address(address).is_loopback:
                return address
    return "127.0.0.1"


def check_server_ip(text):
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise ValueError(f"--server_ip {text!r} is not an IPv4 address") from None


def write_json_atomically(path, data):
    """Write to a temporary file beside ``path``, then rename: no reader sees half a file."""
    directory = os.path.dirname(os.path.abspath(path))
    with tempfile.NamedTemporaryFile("w", dir=directory, suffix=".tmp", delete=False,
                                     encoding="utf-8") as tmp_file:
        json.dump(data, tmp_file, indent=4)
        tmp_file.write("\n")
    os.chmod(tmp_file.name, 0o644)
    os.replace(tmp_file.name, path)


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device_num", default="[0,8)",
                        help='half-open range of positions in --visible_devices, e.g. "[0,4)"')
    parser.add_argument("--visible_devices", default="0,1,2,3,4,5,6,7",
                        help="comma-separated device ids of this server (default 0..7)")
    parser.add_argument("--server_ip", default=None,
                        help="this server's IP (default: its first non-loopback IPv4 address)")
    parser.add_argument("--hccn_conf", default="/etc/hccn.conf",
                        help="file with the cards' address_N=IP lines")
    parser.add_argument("--out_dir", default=".", help="where to write the JSON file")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        device_ids = select_devices(parse_device_range(args.device_num),
                                    parse_visible_devices(args.visible_devices))
        device_ips = read_device_ips(args.hccn_conf)
        server_ip = check_server_ip(args.server_ip) if args.server_ip else default_server_ip()
        rank_table = build_rank_table(server_ip, device_ids, device_ips, args.hccn_conf)
        os.makedirs(args.out_dir, exist_ok=True)
        path = os.path.join(args.out_dir, rank_table_filename(device_ids, server_ip))
        write_json_atomically(path, rank_table)
    except (ValueError, OSError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
