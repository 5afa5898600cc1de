"""Sphinx: link the package's own type names in parameter types to their reference entries.

Under ``from __future__ import annotations`` autodoc can evaluate a function's annotations
but not a class constructor's: ``ChipDataset(items: ItemsLike)`` reaches Sphinx as the bare
name ``ItemsLike``, which it looks up as a class. This resolves such a bare name to the one
``geolesson`` object of that name (a type alias such as ``geolesson.items.ItemLike`` is
documented as data), so ``-n`` checks the name instead of ignoring it. Names with no entry,
or with several, stay unresolved and are reported as before.
"""

from __future__ import annotations


def _resolve(app, env, node, contnode):
    if node.get("refdomain") != "py" or node.get("reftype") not in ("class", "obj"):
        return None
    target = node.get("reftarget", "")
    if "." in target:
        return None
    domain = env.get_domain("py")
    found = [(name, obj) for name, obj in domain.objects.items()
             if name.startswith("geolesson.") and name.rsplit(".", 1)[-1] == target]
    if len(found) != 1:
        return None
    name, obj = found[0]
    return domain.resolve_xref(env, node.get("refdoc"), app.builder, obj.objtype, name, node, contnode)


def setup(app):
    app.connect("missing-reference", _resolve)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
