#!/usr/bin/env python3
"""rankd end to end, from interactions to served recommendations (issue 22's worked example).

1. Generates a small implicit-feedback data set (users clicking items of the categories they like;
   seeded, no downloads).
2. Trains implicit ALS (Hu, Koren & Volinsky 2008: confidence 1 + alpha * clicks, alternating
   exact least squares) in numpy.
3. Exports what `rankctl build` reads: users.npy, users.txt, items.npy, items.jsonl.
4. Builds a snapshot, starts rankd on a free loopback port, publishes and activates the snapshot
   through the admin API (`rankctl publish --activate`).
5. Calls Ranker/Rank for a user and Ranker/Related for a product page with grpcio, prints both,
   and checks they make sense (exit status 1 if not): CI runs this (`make test`), so it stays true.

    python3 examples/implicit-als/train_and_serve.py --bin-dir .build/debug

Needs numpy, grpcio and grpcio-tools (Tests/Interop/requirements.txt). About 10 s.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CATEGORIES = ["Running Shoes", "Trail Shoes", "Rain Jackets", "Yoga Mats", "Tents", "Headlamps"]


def generate(users=1500, items=300, seed=22):
    """Each user likes two categories and clicks mostly inside them; each item has one category
    and a popularity of its own. Returns the click matrix and the item catalogue."""
    rng = np.random.default_rng(seed)
    category = rng.integers(len(CATEGORIES), size=items)
    appeal = rng.lognormal(0.0, 0.6, size=items)
    clicks = np.zeros((users, items), dtype=np.float32)
    for u in range(users):
        liked = rng.choice(len(CATEGORIES), size=2, replace=False)
        weight = np.where(np.isin(category, liked), 1.0, 0.04) * appeal
        chosen = rng.choice(items, size=rng.integers(8, 30), replace=True, p=weight / weight.sum())
        np.add.at(clicks[u], chosen, 1.0)
    catalogue = []
    for i in range(items):
        catalogue.append({
            "id": f"sku-{i}", "category": CATEGORIES[category[i]], "brand": f"brand-{i % 7}",
            "price": round(float(rng.uniform(10, 200)), 2), "in_stock": bool(rng.random() > 0.1),
            "popularity": round(float(clicks[:, i].sum()), 2), "created_at": 1733000000 - i * 3600,
            "tags": ["sale"] if i % 5 == 0 else [],
        })
    return clicks, catalogue


def implicit_als(clicks, factors=16, alpha=20.0, regularization=0.1, iterations=8, seed=22):
    """Implicit ALS with exact per-row solves: minimise sum c_ui (p_ui - x_u.y_i)^2 + lambda(|X|^2 + |Y|^2),
    p = clicks > 0, c = 1 + alpha * clicks. Uses the YtY + Yt(C_u - I)Y trick so a row costs
    O(nnz_u * f^2 + f^3)."""
    rng = np.random.default_rng(seed)
    users, items = clicks.shape
    x = rng.normal(0, 0.1, (users, factors))
    y = rng.normal(0, 0.1, (items, factors))
    confidence = 1.0 + alpha * clicks

    def solve(fixed, conf_rows):
        gram = fixed.T @ fixed + regularization * np.eye(factors)
        out = np.empty((conf_rows.shape[0], factors))
        for row, conf in enumerate(conf_rows):
            seen = np.nonzero(conf > 1.0)[0]
            f = fixed[seen]
            c = conf[seen]
            a = gram + (f.T * (c - 1.0)) @ f
            b = (f.T * c).sum(axis=1)
            out[row] = np.linalg.solve(a, b)
        return out

    for _ in range(iterations):
        x = solve(y, confidence)
        y = solve(x, confidence.T)
    return x.astype(np.float32), y.astype(np.float32)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stubs(work):
    """Python stubs for ranking.v1 from the repo's protos (grpcio-tools; nothing downloaded)."""
    from grpc_tools import protoc

    out = work / "stubs"
    out.mkdir()
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    args = ["protoc", f"-I{ROOT / 'Protos'}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}",
            "ranking/v1/ranker.proto"]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed")
    for directory in [out / "ranking", out / "ranking" / "v1"]:
        (directory / "__init__.py").touch()
    sys.path.insert(0, str(out))
    from ranking.v1 import ranker_pb2, ranker_pb2_grpc
    return ranker_pb2, ranker_pb2_grpc


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin-dir", default=str(ROOT / ".build" / "debug"), help="where rankd and rankctl are")
    parser.add_argument("--work", help="working directory (default: a temporary one, removed afterwards)")
    args = parser.parse_args()
    rankctl, rankd = str(Path(args.bin_dir) / "rankctl"), str(Path(args.bin_dir) / "rankd")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="rankd-example-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    clicks, catalogue = generate()
    user_vectors, item_vectors = implicit_als(clicks)
    data = work / "data"
    data.mkdir(exist_ok=True)
    np.save(data / "users.npy", user_vectors)
    np.save(data / "items.npy", item_vectors)
    user_ids = [f"user-{u}" for u in range(len(user_vectors))]
    (data / "users.txt").write_text("\n".join(user_ids) + "\n")
    (data / "items.jsonl").write_text("".join(json.dumps(item) + "\n" for item in catalogue))
    print(f"trained implicit ALS: {user_vectors.shape[0]} users, {item_vectors.shape[0]} items, "
          f"{user_vectors.shape[1]} factors, {int(clicks.sum())} clicks ({time.monotonic() - started:.1f} s)")

    version = "als-v1"
    subprocess.run([rankctl, "build", "--users", str(data / "users.npy"), "--user-ids", str(data / "users.txt"),
                    "--items", str(data / "items.npy"), "--items-meta", str(data / "items.jsonl"),
                    "--out", str(work / version)], check=True)

    token = work / "admin-token"
    token.write_text("example-admin-token-0123456789\n")
    port = free_port()
    root = work / "root"
    server = subprocess.Popen([rankd, "--listen", f"127.0.0.1:{port}", "--snapshot-root", str(root),
                               "--admin-token-file", str(token)], stderr=open(work / "rankd.log", "w"))
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("rankd did not start: " + (work / "rankd.log").read_text())
                time.sleep(0.05)
        subprocess.run([rankctl, "publish", str(work / version), "--activate", "--quiet",
                        "--server", f"127.0.0.1:{port}", "--token-file", str(token)], check=True)

        import grpc
        pb, rpc = stubs(work)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        ranker = rpc.RankerStub(channel)

        # The homepage row for one user: personalised, diversified, in stock only.
        user = 7
        rank = ranker.Rank(pb.RankRequest(
            user_id=user_ids[user], k=8, explain=True, filter=pb.Filter(in_stock_only=True),
            diversity=pb.Diversity(method=pb.DIVERSITY_METHOD_MMR)), timeout=5)
        print(f"\nRank for {user_ids[user]} (snapshot {rank.snapshot_version}, "
              f"strategy {pb.Strategy.Name(rank.strategy)}):")
        for item in rank.items:
            print(f"  {item.position}. {item.item_id:8} {item.category:14} {item.score:.3f}  {item.explanation.reason}")
        favourite = {c for c, n in zip(*np.unique([catalogue[i]["category"] for i in np.nonzero(clicks[user])[0]],
                                                  return_counts=True)) if n >= 3}

        # "Customers who bought this also bought": a product page.
        seed = "sku-3"
        related = ranker.Related(pb.RelatedRequest(seed_item_ids=[seed], rules=pb.RankRequest(k=6, explain=True, diversity=pb.Diversity(method=pb.DIVERSITY_METHOD_NONE))),
                                 timeout=5)
        print(f"\nRelated to {seed} ({catalogue[3]['category']}):")
        for item in related.items:
            print(f"  {item.position}. {item.item_id:8} {item.category:14} {item.score:.3f}  {item.explanation.reason}")
        channel.close()

        # Sanity checks: a trained model puts the user's categories and the seed's category first.
        same = sum(item.category == catalogue[3]["category"] for item in related.items)
        liked = sum(item.category in favourite for item in rank.items)
        problems = []
        if rank.snapshot_version != version or pb.Strategy.Name(rank.strategy) != "STRATEGY_PERSONALIZED":
            problems.append(f"Rank served {rank.snapshot_version}/{rank.strategy}")
        if len(rank.items) != 8 or liked < 4:
            problems.append(f"Rank: {liked} of {len(rank.items)} items in the user's favourite categories {favourite}")
        if len(related.items) != 6 or same < 4 or seed in [i.item_id for i in related.items]:
            problems.append(f"Related: {same} of {len(related.items)} items share the seed's category")
        if problems:
            print("\nFAILED: " + "; ".join(problems), file=sys.stderr)
            return 1
        print(f"\nok ({time.monotonic() - started:.1f} s)")
        return 0
    finally:
        server.terminate()
        server.wait(timeout=20)
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
