"""Shared caches survive concurrent writers: processes asking for one entry at once render it once."""

import multiprocessing
import os
import time

import numpy as np

from posegen_env.data.cache import ensure_cached


def _ask_for_base_split(cache: str, queue) -> None:
    os.environ["POSEGEN_CACHE"] = cache
    os.environ["OMP_NUM_THREADS"] = "1"
    from posegen_env.data.base_splits import base_split
    from posegen_env.data.cache import cache_root
    from posegen_env.render.avatar import load_avatar

    avatar = load_avatar()
    batch = base_split(avatar, "val", 24)
    entry = next((cache_root() / "base" / avatar.identifier).glob("val-n24-*/dataset.json"))
    queue.put((batch.joints3d.sum(), entry.stat().st_mtime_ns, len(batch)))


def test_processes_starting_on_one_empty_cache_render_it_once(tmp_path):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_ask_for_base_split, args=(str(tmp_path), queue)) for _ in range(3)]
    for w in workers:
        w.start()
    results = [queue.get(timeout=240) for _ in workers]
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    sums, written, sizes = zip(*results, strict=True)
    assert sizes == (24, 24, 24) and np.allclose(sums, sums[0])
    assert len(set(written)) == 1  # one writer: nobody replaced the entry another was reading
    assert not list(tmp_path.rglob(".*staging*"))


def test_a_waiting_process_reads_what_the_first_built(tmp_path):
    built = []
    entry = tmp_path / "entry"

    def build():
        time.sleep(0.05)
        entry.mkdir()
        built.append(1)

    for _ in range(3):
        ensure_cached(entry, lambda p: p.is_dir(), build)
    assert built == [1]
    ensure_cached(entry, lambda p: p.is_dir(), lambda: built.append(2), rebuild=True)
    assert built == [1, 2]
