"""`harness nightly`: the whole matrix on a linux-next tree, compared with the night before.

The stages, one module each: `tree` (fetch, pick the ref, check out), `matrix` (targets x
scenarios, one process per run, retries), `classify` (new / known / fixed / flaky, canaries
apart), `history` (sqlite under results/), `reports/` (JUnit, KCIDB, HTML, mail), `core`
(the order of all that) and `cmd` (the subcommand).
"""
