"""The content policy file (R14), re-read while the service runs.

Editing the file is enough to change the rules: the service looks at its
modification time at most once per check interval and reloads on a change. A
file that cannot be read or parsed never takes the rules away: the last good
policy stays in force and the problem is logged (at startup a bad file is an
error, so a typo cannot start a service that screens nothing). Write the file
atomically (write a temporary file, then rename) so no half-written version is
ever read; a torn read is in any case replaced at the next check, because the
finished write changes the file's signature again.
"""

import os
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from services.common.logging import get_logger
from services.moderation.domain import ContentPolicy, ContentPolicyError

log = get_logger("im.moderation.policy")

Signature = tuple[int, int, int]


def read_policy(path: Path) -> ContentPolicy:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ContentPolicyError(f"cannot read {path}: {exc}") from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ContentPolicyError(f"{path} is not valid YAML: {exc}") from exc
    try:
        return ContentPolicy.from_mapping(document)
    except ContentPolicyError as exc:
        raise ContentPolicyError(f"{path}: {exc}") from exc


def _signature(path: Path) -> Signature:
    stat = os.stat(path)
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


class ContentPolicyFile:
    def __init__(self, path: Path, *, check_interval: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        self._check_interval = check_interval
        self._clock = clock
        try:
            self._signature = _signature(self.path)  # before reading: a write racing the read changes it again
        except OSError as exc:
            raise ContentPolicyError(f"cannot read {self.path}: {exc}") from exc
        self._policy = read_policy(self.path)
        self._checked_at = clock()

    def current(self) -> ContentPolicy:
        """The policy in force, reloaded first if the file changed since the last look."""
        now = self._clock()
        if now - self._checked_at >= self._check_interval:
            self._checked_at = now
            self._reload_if_changed()
        return self._policy

    def _reload_if_changed(self) -> None:
        try:
            signature = _signature(self.path)
        except OSError as exc:
            log.error("content policy file unreadable; keeping the rules in force", path=str(self.path), error=str(exc))
            return
        if signature == self._signature:
            return
        self._signature = signature  # a bad version is reported once, not at every check
        try:
            self._policy = read_policy(self.path)
        except ContentPolicyError as exc:
            log.error("content policy not reloaded; keeping the rules in force", error=str(exc))
            return
        log.info("content policy reloaded", path=str(self.path), rules=len(self._policy.rules))
