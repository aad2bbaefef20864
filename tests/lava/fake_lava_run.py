"""A stand-in for lava-run: replays a recorded LAVA log for the job it is given.

usage (as lava-run): lava-run --job-id ID --device D --output-dir OUT JOB
FAKE_LAVA_LOG is the recorded stderr, FAKE_LAVA_NONCE the nonce recorded in it, which
becomes the job's own (metadata harness.nonce) so the markers belong to this run.
Writes OUT/result.yaml from the log's job result and exits 0 on pass, 1 otherwise.
"""

import json
import os
import sys

import yaml

args = sys.argv[1:]
out = args[args.index("--output-dir") + 1]
job = yaml.safe_load(open(args[-1]))
nonce = job["metadata"]["harness.nonce"]
result = {"case": "job", "definition": "lava", "result": "fail", "error_msg": "no log"}
with open(os.environ["FAKE_LAVA_LOG"]) as fh:
    for line in fh:
        line = line.replace(os.environ["FAKE_LAVA_NONCE"], nonce)
        sys.stderr.write(line)
        if '"case": "job"' in line:
            result = yaml.safe_load(line)["msg"]
with open(os.path.join(out, "result.yaml"), "w") as fh:
    yaml.safe_dump(result, fh)
json.dump(args, open(os.path.join(out, "fake-args.json"), "w"))
sys.exit(0 if result["result"] == "pass" else 1)
