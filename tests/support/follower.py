"""A follower process: writes every committed status packet it is given, one line each.

Line: ``<stream seq> <packet id hex> <origin> <origin seq>``. Stops after
COUNT packets, or at the deadline.
"""

import argparse
import sys
import time
from pathlib import Path

from mtpkt.bus.follow import Follower


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--request", required=True)
    parser.add_argument("--publish", required=True)
    parser.add_argument("--key-file", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=120.0)
    args = parser.parse_args()
    seen = 0
    with Follower(args.request, args.publish, args.key_file.read_bytes()) as follower:
        with args.out.open("w") as out:
            print("following", flush=True)
            for seq, packet in follower.follow(until=time.monotonic() + args.seconds):
                out.write(f"{seq} {packet.id.hex()} {packet.origin} {packet.seq}\n")
                seen += 1
                if seen >= args.count:
                    break
            out.flush()
        print(f"followed {seen} packets, {follower.refills} refills", flush=True)
    return 0 if seen >= args.count else 1


if __name__ == "__main__":
    sys.exit(main())
