#!/usr/bin/env python3
"""Tier 4, on demand: do the delta statements of two revisions get the same PostgreSQL plans?

    scripts/compare_plans.py OLD_REV        (dev cluster running: scripts/cluster.sh start)

Creates the oracle's tables (with some rows) and its shapes as stream tables in a scratch
database `pgt_plans`, then for every shape planned directly (not over internal or TopK tables)
takes the delta statement from the golden files of OLD_REV (`git show`) and of the working tree,
points their change buffers at the real ones, and compares `EXPLAIN (COSTS OFF)` of each as a
generic plan. Plans that differ only in the alias of a function scan count as the same. Prints a
count, and the shapes whose plans differ."""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PORT = os.environ.get("PGT_PORT", "28818")
PSQL = [os.path.join(subprocess.run(["bash", "-c", f"source {ROOT}/scripts/env.sh; pg_bin psql"],
                                    capture_output=True, text=True).stdout.strip())]
PSQL = [PSQL[0], "-h", "localhost", "-p", PORT, "-U", "postgres", "-X", "-At", "-v", "ON_ERROR_STOP=1"]


def psql(db, script):
    return subprocess.run(PSQL + ["-d", db], input=script, capture_output=True, text=True)


def section(text, name):
    for s in re.split(r"^== ", text, flags=re.M):
        head, _, body = s.partition("\n")
        if head == name:
            return body
    return None


def main():
    old_rev = sys.argv[1]
    shapes_src = open(f"{ROOT}/tests/src/oracle_shapes.rs").read()
    schema = re.search(r'pub const SCHEMA: &str = "(.*?)";', shapes_src, re.S).group(1)
    block = shapes_src[shapes_src.index("pub const SHAPES"):shapes_src.index("];")]
    shapes = [q.replace('\\"', '"') for q in re.findall(r'^\s*"(.*)",\s*$', block, re.M)]
    psql("postgres", "DROP DATABASE IF EXISTS pgt_plans WITH (FORCE);\nCREATE DATABASE pgt_plans;")
    setup = ("SET client_min_messages = warning; CREATE EXTENSION pg_trickle; "
             "SET pg_trickle.enabled = off;\n" + schema + "\n"
             "INSERT INTO items SELECT i, (ARRAY['a','b','c',NULL])[1 + i % 4], i % 3, i % 97, i % 10, "
             "i % 2 = 0, 'x' || i, i * 0.25 FROM generate_series(1, 2000) i;\n"
             "INSERT INTO bag SELECT (ARRAY['a','b'])[1 + i % 2], i % 7, 'n' FROM generate_series(1, 300) i;\n")
    for i, q in enumerate(shapes):
        setup += (f"SELECT pgtrickle.create_stream_table('s{i:03}', $q${q}$q$, "
                  "refresh_mode => 'DIFFERENTIAL', cdc_mode => 'trigger');\n")
    r = psql("pgt_plans", setup)
    if r.returncode != 0:
        sys.exit(r.stderr)
    oids = dict(line.split("|") for line in psql(
        "pgt_plans", "SELECT relname, oid FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                     "AND relname IN ('items', 'bag', 'cat')").stdout.split())

    def golden_id(qualified):
        # tests/tests/golden.rs numbers buffers by name, not OID: FNV-1a of the name.
        h = 2166136261
        for b in qualified.encode():
            h = ((h ^ b) * 16777619) % 2**32
        return h % 90000 + 10000

    def real_buffers(golden, sql):
        for table, oid in oids.items():
            sql = sql.replace(f"changes_{golden_id('public.' + table)}\"", f"changes_{oid}\"")
        return sql

    def plan(sql):
        n = max([int(x) for x in re.findall(r"\$(\d+)", sql)] + [2])
        types = ["pg_snapshot", "xid8"] + ["bigint"] * (n - 2)
        args = ["pg_catalog.pg_current_snapshot()", "NULL"] + ["0"] * (n - 2)
        r = psql("pgt_plans", f"SET plan_cache_mode = force_generic_plan;\n"
                              f"PREPARE p({', '.join(types)}) AS {sql};\n"
                              f"EXPLAIN (COSTS OFF) EXECUTE p({', '.join(args)});\n")
        if r.returncode != 0:
            return None
        return re.sub(r"(Function Scan on \w+)( \w+)?", r"\1", r.stdout)

    same, differ, skipped = 0, [], 0
    for i in range(len(shapes)):
        name = f"s{i:03}.txt"
        new = open(f"{ROOT}/tests/golden/oracle/{name}").read()
        old = subprocess.run(["git", "-C", ROOT, "show", f"{old_rev}:tests/golden/oracle/{name}"],
                             capture_output=True, text=True).stdout
        a, b = section(old, "delta refresh"), section(new, "delta refresh")
        if not a or not b or "sub_" in a or "topk_" in a:
            skipped += 1
            continue
        pa, pb = plan(real_buffers(old, a)), plan(real_buffers(new, b))
        if pa is None or pb is None:
            skipped += 1
        elif pa == pb:
            same += 1
        else:
            differ.append(name)
    print(f"same plans: {same}, different: {len(differ)} {' '.join(differ)}, "
          f"not compared (over internal or TopK tables, or not planned): {skipped}")
    psql("postgres", "DROP DATABASE pgt_plans WITH (FORCE);")


if __name__ == "__main__":
    main()
