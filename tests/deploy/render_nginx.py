#!/usr/bin/env python3
"""docker/nginx.conf for the loopback failover test: the lines marked "loopback test" get the
test's upstream servers, listen address and log files; nothing else changes, so what is tested
is the compose file's proxy and retry policy. Fails when a marked line is not found once.

usage: render_nginx.py OUT_DIR LISTEN_PORT UPSTREAM_PORT...
"""
import re
import sys

out_dir, listen, upstreams = sys.argv[1], sys.argv[2], sys.argv[3:]
text = open("docker/nginx.conf").read()


def replace(pattern, make):
    global text
    text, n = re.subn(pattern, make, text, flags=re.M)
    if n != 1:
        sys.exit(f"render_nginx.py: '{pattern}' matched {n} lines of docker/nginx.conf")


replace(r"^( *)server convd:8080( [^;]*);.*$",
        lambda m: "\n".join(f"{m[1]}server 127.0.0.1:{p}{m[2]};" for p in upstreams))
replace(r"^( *)listen 8080;.*$", lambda m: f"{m[1]}listen 127.0.0.1:{listen};")
replace(r"^( *)access_log /dev/stdout convd;.*$",
        lambda m: f"{m[1]}access_log {out_dir}/access.log convd;")
replace(r"^error_log /dev/stderr warn;$", lambda m: f"error_log {out_dir}/error.log warn;")
open(f"{out_dir}/nginx.conf", "w").write(text)
