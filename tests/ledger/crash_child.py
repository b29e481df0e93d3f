"""Child process of test_ledger_crash.py: records events as fast as it can from several
threads and prints each event's id the moment ``record`` returned (i.e. it was
acknowledged), until it is killed."""

from __future__ import annotations

import sys
import threading

from ledger_helpers import make_event

from keyplane.ledger.checkpoints import LedgerKeyring
from keyplane.ledger.writer import LedgerWriter
from keyplane.secrets import load_master_key
from keyplane.storage import open_storage


def main() -> None:
    url, key_file = sys.argv[1], sys.argv[2]
    storage = open_storage(url)
    master = load_master_key(key_file=key_file)
    writer = LedgerWriter(
        storage,
        mode="sync",
        checkpoint_every_events=50,
        signer=LedgerKeyring(storage, lambda: master),
    )
    out_lock = threading.Lock()

    def worker(k: int) -> None:
        i = 0
        while True:
            e = make_event(k * 1_000_000 + i, store="crash")
            writer.record(e)
            with out_lock:
                sys.stdout.write(e.id + "\n")
                sys.stdout.flush()
            i += 1

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
