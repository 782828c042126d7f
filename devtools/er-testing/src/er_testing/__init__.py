"""er-testing: the fixtures and helpers er's test suites share, in one place so a fix lands
once. Dev only: never a dependency of a shipped package.

Modules: `toy` (the toy dataset with planted features), `training` (train in the test process),
`errors` (error-line checks), `cli` (subprocess, shell and in-process runners), `plugin` (the
pytest fixtures, loaded through the `pytest11` entry point).
"""
