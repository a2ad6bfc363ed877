"""Claude Code asked for a session title beside its first turn, as an editor integration does.

In ``-p`` mode Claude Code sends no title request of its own; the hosts of its SDK protocol
(``--input-format stream-json``) ask for one with a ``generate_session_title`` control request,
and Claude Code then sends the endpoint a title request (no tools, a JSON schema for the
answer) while the task's first turn is in flight. Non-essential traffic is left on.

    python claude_with_title.py MODEL INSTRUCTION_FILE
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def main() -> None:
    model, instruction_file = sys.argv[1:3]
    instruction = Path(instruction_file).read_text(encoding="utf-8")
    lines = [
        {"type": "user", "message": {"role": "user", "content": instruction}},
        {
            "type": "control_request",
            "request_id": "title-1",
            "request": {"subtype": "generate_session_title", "description": instruction},
        },
    ]
    command = [
        "claude",
        "-p",
        "--input-format",
        "stream-json",
        "--output-format",
        "stream-json",
        "--verbose",
        "--dangerously-skip-permissions",
        "--model",
        model,
    ]
    stdin = "".join(json.dumps(line) + "\n" for line in lines)
    done = subprocess.run(command, input=stdin, text=True, capture_output=True, check=False)
    sys.stdout.write(done.stdout[-4000:])
    sys.stderr.write(done.stderr[-4000:])
    sys.exit(done.returncode)


if __name__ == "__main__":
    main()
