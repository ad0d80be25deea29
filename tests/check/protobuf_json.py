"""Checks JSON against protobuf's own JSON mapping (the reference implementation).

Usage: protobuf_json.py DESCRIPTOR_SET CASES_JSON
  DESCRIPTOR_SET  an encoded google.protobuf.FileDescriptorSet
  CASES_JSON      a JSON list of {"type": "<message full name>", "json": {...}}

Each case's JSON is parsed strictly into its message (unknown fields, wrong types
and bad enum names are errors) and rendered back with protobuf's canonical mapping;
the two must be equal. Prints one line per case; exits 1 on any difference.
"""

import json
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory


def main() -> int:
    fds = descriptor_pb2.FileDescriptorSet()
    with open(sys.argv[1], "rb") as f:
        fds.ParseFromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    pending = list(fds.file)
    # Add files after their dependencies.
    added = set()
    while pending:
        progress = False
        for fd in list(pending):
            if all(dep in added for dep in fd.dependency):
                pool.Add(fd)
                added.add(fd.name)
                pending.remove(fd)
                progress = True
        if not progress:
            print("unresolvable imports:", [fd.name for fd in pending])
            return 1
    with open(sys.argv[2]) as f:
        cases = json.load(f)
    failed = 0
    for case in cases:
        cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(case["type"]))
        try:
            message = json_format.ParseDict(case["json"], cls())
        except json_format.ParseError as e:
            print(f"FAIL {case['type']}: not valid protobuf JSON: {e}")
            failed += 1
            continue
        canonical = json_format.MessageToDict(message)
        if canonical != case["json"]:
            print(f"FAIL {case['type']}: differs from the canonical mapping")
            print("  sent:     ", json.dumps(case["json"], sort_keys=True))
            print("  canonical:", json.dumps(canonical, sort_keys=True))
            failed += 1
        else:
            print(f"ok   {case['type']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
