"""A small Dockerfile reader for tests: stages, what each build target inherits, what it runs.

It reads what the tests ask about, the way BuildKit does: instructions are case-insensitive,
`\\` continues a line, comment lines are dropped (also inside a continued instruction), ARGs
declared before the first FROM are substituted into FROM, a stage FROM an earlier stage inherits
its USER, ENV, ENTRYPOINT and CMD, and ENTRYPOINT set in a stage clears the CMD it inherited.
Not handled (the Dockerfile uses none): heredocs, the `escape` directive, ONBUILD.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, USER, ...
    value: str  # the arguments, continuation lines joined

    def exec_form(self) -> list[str]:
        """RUN/CMD/ENTRYPOINT as the argv Docker runs: JSON as written, else through sh -c."""
        if self.value.startswith("["):
            argv: list[str] = json.loads(self.value)
            return argv
        return ["/bin/sh", "-c", self.value]

    def words(self) -> list[str]:
        return shlex.split(self.value)

    def flags(self) -> dict[str, str]:
        """`--from=base`, `--chown=...` of COPY/ADD/FROM."""
        flags: dict[str, str] = {}
        for word in self.words():
            if word.startswith("--"):
                key, _, value = word[2:].partition("=")
                flags[key] = value
        return flags

    def operands(self) -> list[str]:
        return [word for word in self.words() if not word.startswith("--")]


@dataclass
class Stage:
    base: str  # the FROM image, or the name of an earlier stage
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


@dataclass
class Dockerfile:
    stages: list[Stage]
    comments: list[str]

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(f"no stage {name!r}")

    @property
    def names(self) -> list[str]:
        return [stage.name for stage in self.stages if stage.name]

    def chain(self, target: str) -> list[Stage]:
        """The target and the stages it is built FROM, base first."""
        stages = [self.stage(target)]
        while stages[0].base in self.names:
            stages.insert(0, self.stage(stages[0].base))
        return stages

    def image(self, target: str) -> str:
        """The registry image the target's filesystem starts from."""
        return self.chain(target)[0].base

    def last(self, target: str, keyword: str) -> Instruction | None:
        found = [i for stage in self.chain(target) for i in stage.all(keyword)]
        return found[-1] if found else None

    def user(self, target: str) -> str | None:
        user = self.last(target, "USER")
        return user.value if user is not None else None

    def command(self, target: str) -> list[str]:
        """ENTRYPOINT + CMD: what `docker run IMAGE` starts."""
        entrypoint: list[str] = []
        cmd: list[str] = []
        for stage in self.chain(target):
            for instruction in stage.instructions:
                if instruction.keyword == "ENTRYPOINT":
                    entrypoint, cmd = instruction.exec_form(), []
                elif instruction.keyword == "CMD":
                    cmd = instruction.exec_form()
        return entrypoint + cmd

    def env(self, target: str) -> dict[str, str]:
        """ENV as set in the target's stages (values as written: `$PATH` is not expanded)."""
        env: dict[str, str] = {}
        for stage in self.chain(target):
            for instruction in stage.all("ENV"):
                words = instruction.words()
                if "=" in words[0]:
                    for word in words:
                        key, _, value = word.partition("=")
                        env[key] = value
                else:  # legacy `ENV KEY value`
                    env[words[0]] = instruction.value.split(None, 1)[1]
        return env

    def exposed(self, target: str) -> set[int]:
        return {
            int(port.split("/")[0])
            for stage in self.chain(target)
            for instruction in stage.all("EXPOSE")
            for port in instruction.words()
        }

    def runs(self, target: str) -> list[Instruction]:
        return [i for stage in self.chain(target) for i in stage.all("RUN")]


def logical_lines(text: str) -> tuple[list[str], list[str]]:
    """(instructions with continuations joined, comment lines without their `#`)."""
    lines: list[str] = []
    comments: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#"):
            comments.append(stripped[1:].strip())
            continue
        if not stripped and not pending:
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1].strip() + " "
            continue
        lines.append((pending + stripped).strip())
        pending = ""
    if pending:
        lines.append(pending.strip())
    return lines, comments


def parse(text: str) -> Dockerfile:
    lines, comments = logical_lines(text)
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        keyword, _, value = line.partition(" ")
        instruction = Instruction(keyword.upper(), value.strip())
        if instruction.keyword == "FROM":
            words = instruction.operands()
            base = _VARIABLE.sub(lambda m: args.get(m.group(1) or m.group(2), ""), words[0])
            name = words[2] if len(words) == 3 and words[1].lower() == "as" else None
            stages.append(Stage(base, name))
        elif not stages:
            if instruction.keyword == "ARG":
                key, _, default = instruction.value.partition("=")
                args[key.strip()] = default.strip()
        else:
            stages[-1].instructions.append(instruction)
    return Dockerfile(stages, comments)


def read(path: Path) -> Dockerfile:
    return parse(path.read_text())
