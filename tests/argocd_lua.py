"""Run Argo CD's Lua customizations (health.lua, actions) in Lua 5.1 as Argo CD does.

LuaJIT through lupa implements Lua 5.1, the dialect of gopher-lua that Argo CD embeds. Each
script runs with a fresh sandbox holding only the libraries Argo CD opens and the global `obj`.
Used by the unit tests (hand-written objects) and the integration tests (objects the operator
really wrote).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lupa import luajit21

_SANDBOX = """
return function(source, name, obj)
  local env = {
    obj = obj, pairs = pairs, ipairs = ipairs, tostring = tostring, tonumber = tonumber,
    type = type, next = next, error = error, pcall = pcall, select = select, unpack = unpack,
    string = string, table = table, math = math,
  }
  local chunk, err = loadstring(source, name)
  if chunk == nil then error(err) end
  setfenv(chunk, env)
  return chunk()
end
"""


class ArgoLua:
    def __init__(self, argocd_dir: Path) -> None:
        self._dir = argocd_dir
        self._lua = luajit21.LuaRuntime(unpack_returned_tuples=True)
        assert self._lua.eval("_VERSION") == "Lua 5.1"
        self._run = self._lua.execute(_SANDBOX)

    def _call(self, relative: str, obj: dict[str, Any]) -> Any:
        source = (self._dir / relative).read_text()
        result = self._run(source, relative, self._to_lua(obj))
        return self._to_python(result)

    def health(self, obj: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("health.lua", obj))

    def discovery(self, obj: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("actions/discovery.lua", obj))

    def action(self, name: str, obj: dict[str, Any]) -> dict[str, Any]:
        # Argo CD hands the script a copy and diffs the result against the live object.
        result = self._call(f"actions/{name}.lua", json.loads(json.dumps(obj)))
        return dict(_restore_empty_lists(result, obj))

    def _to_lua(self, value: Any) -> Any:
        if isinstance(value, dict):
            return self._lua.table_from({k: self._to_lua(v) for k, v in value.items()})
        if isinstance(value, list):
            return self._lua.table_from([self._to_lua(v) for v in value])
        return value

    def _to_python(self, value: Any) -> Any:
        if luajit21.lua_type(value) != "table":
            return value
        keys = list(value.keys())
        if keys and all(isinstance(k, int) for k in keys):
            return [self._to_python(value[i]) for i in sorted(keys)]
        return {k: self._to_python(v) for k, v in value.items()}


def _restore_empty_lists(new: Any, old: Any) -> Any:
    """An empty Lua table has no type: where the input held a list, keep a list (Argo CD does
    the same after running an action, comparing with the object it passed in)."""
    if isinstance(new, dict) and isinstance(old, dict):
        return {k: _restore_empty_lists(v, old.get(k)) for k, v in new.items()}
    if isinstance(new, list) and isinstance(old, list):
        return [_restore_empty_lists(n, o) for n, o in zip(new, old, strict=False)] + new[
            len(old) :
        ]
    if new == {} and isinstance(old, list):
        return []
    return new


def action_patches(
    before: dict[str, Any], after: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split an action's result the way Argo CD applies it: (object patch, /status patch),
    both JSON merge patches of the top-level fields that changed under spec and status."""
    patches: list[dict[str, Any]] = []
    for part in ("spec", "status"):
        old, new = before.get(part) or {}, after.get(part) or {}
        changed = {k: v for k, v in new.items() if old.get(k) != v}
        changed |= {k: None for k in old if k not in new}
        patches.append({part: changed} if changed else {})
    return patches[0], patches[1]
