#!/usr/bin/env python3
"""Checks the iOS shell's Swift without a Swift compiler (none is reachable from the project's CI).

Three checks, each a subcommand:

  parse FILE_OR_DIR...     every .swift file parses with tree-sitter's Swift grammar with no
                           ERROR or MISSING node; failures are reported as file:line:col.
  names BINDINGS DIR [PLATFORM_LIST]
                           every name the shell (the .swift files under DIR) uses on the generated
                           bindings exists in BINDINGS (the freshly generated AmanatCore.swift),
                           read with tree-sitter: types, free functions, members with their
                           argument labels, enum cases and their arity, protocol requirements,
                           exhaustive switches. See `check_names` and ios/README.md for the rules.
  strings RES_DIR [SHELL_DIR]
                           every key of every Localizable.strings under RES_DIR/*.lproj exists in
                           all three languages (en, ru, uz), with the same format placeholders,
                           Uzbek in Latin script; with SHELL_DIR, every key the shell looks up.
  dump BINDINGS            prints what was collected from the bindings (for writing the shell).

Exit status 0 when clean, 1 with one line per problem otherwise.
"""
from __future__ import annotations

import os
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field

import tree_sitter_swift
from tree_sitter import Language, Node, Parser

LANG = Language(tree_sitter_swift.language())

# Constructs of the generated bindings that tree-sitter-swift 0.7 does not parse; blanked out with
# spaces (positions kept) before the bindings are read. Only the bindings get this treatment: the
# shell itself must parse as written.
_BINDINGS_BLANKS = [
    re.compile(rb"@_documentation\(visibility: private\)"),
    re.compile(rb"(?<=\{) \(\) (?=\})"),
]


def parser() -> Parser:
    return Parser(LANG)


def swift_files(paths: list[str]) -> list[str]:
    out = []
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "build")
                out += [os.path.join(root, f) for f in sorted(files) if f.endswith(".swift")]
        elif p.endswith(".swift"):
            out.append(p)
    return out


def text(n: Node | None) -> str:
    return "" if n is None else n.text.decode("utf-8")


def name_of(n: Node) -> str:
    return text(n).strip("`")


def walk(n: Node):
    stack = [n]
    while stack:
        cur = stack.pop()
        yield cur
        stack.extend(reversed(cur.children))


# ---------------------------------------------------------------- parse check


def parse_problems(path: str) -> list[str]:
    with open(path, "rb") as f:
        src = f.read()
    tree = parser().parse(src)
    probs = []

    def visit(n: Node):
        if n.is_error or n.is_missing:
            r, c = n.start_point
            what = f"missing {n.type}" if n.is_missing else "syntax error"
            probs.append(f"{path}:{r + 1}:{c + 1}: {what} near {text(n)[:40]!r}")
            return
        if n.has_error:
            for ch in n.children:
                visit(ch)

    visit(tree.root_node)
    if not probs and tree.root_node.has_error:
        probs.append(f"{path}:1:1: syntax error")
    return probs


# ---------------------------------------------------------------- declarations


@dataclass
class Callable:
    labels: tuple  # ((label, has_default), ...); label "_" = unlabeled
    returns: str | None = None


@dataclass
class TypeDecl:
    kind: str
    members: dict = field(default_factory=lambda: defaultdict(list))  # name -> [Callable | None]
    member_types: dict = field(default_factory=dict)  # property/func name -> type name
    case_names: set = field(default_factory=set)  # enum cases (enums only)


@dataclass
class Decls:
    types: dict = field(default_factory=dict)  # name -> TypeDecl
    funcs: dict = field(default_factory=lambda: defaultdict(list))  # free functions
    names: set = field(default_factory=set)  # every declared name (members, params, locals …)
    annotations: dict = field(default_factory=lambda: defaultdict(set))  # var/param -> type names
    returns: dict = field(default_factory=lambda: defaultdict(set))  # func name -> type names

    def all_members(self) -> set:
        out = set()
        for t in self.types.values():
            out |= set(t.members)
        return out


def base_type(n: Node | None) -> str | None:
    """`Vault`, `Vault?`→Vault; `[Vault]`→"[Vault]" (element types are followed by for-loops and
    closures); `AmanatCore.Vault`→Vault; anything else (dictionaries, tuples, functions)→None."""
    if n is None:
        return None
    if n.type in ("optional_type", "implicitly_unwrapped_type"):
        return base_type(n.child_by_field_name("wrapped") or n.named_children[0])
    if n.type == "user_type":
        ids = [c for c in n.named_children if c.type == "type_identifier"]
        return name_of(ids[-1]) if ids else None
    if n.type == "type_annotation":
        return base_type(n.child_by_field_name("name") or (n.named_children[0] if n.named_children else None))
    if n.type == "array_type":
        inner = base_type(n.named_children[0]) if n.named_children else None
        return f"[{inner}]" if inner and not inner.startswith("[") else None
    return None


def element_of(t: str | None) -> str | None:
    return t[1:-1] if t and t.startswith("[") else None


def params_of(n: Node) -> tuple:
    labels = []
    children = n.children
    for i, c in enumerate(children):
        if c.type != "parameter":
            continue
        ext = c.child_by_field_name("external_name")
        nm = c.child_by_field_name("name")
        label = name_of(ext) if ext is not None else name_of(nm)
        # A default value follows the parameter as `= expr` among the declaration's children.
        has_default = i + 1 < len(children) and text(children[i + 1]) == "="
        labels.append((label, has_default))
    return tuple(labels)


def return_type(n: Node) -> str | None:
    names = [n.children[i] for i in range(n.child_count) if n.field_name_for_child(i) == "name"]
    # function_declaration: the first `name` is the identifier, a later type node is the return type
    for c in names[1:]:
        t = base_type(c)
        if t:
            return t
    return None


def enum_case_labels(entry: Node) -> list:
    """Each case of an enum_entry (one entry can declare several) → (name, Callable|None)."""
    out = []
    cur = None
    for i, c in enumerate(entry.children):
        fname = entry.field_name_for_child(i)
        if fname == "name" and c.type == "simple_identifier":
            cur = name_of(c)
            out.append([cur, None])
        elif fname == "data_contents" and out:
            kids = [k for k in c.children if k.type not in ("comment", "multiline_comment")]
            # labels collected per parameter: labelled ones are followed by their type, which must not
            # count as an extra unlabelled parameter
            fixed = []
            expect_type = False
            for k in kids:
                if k.type == "simple_identifier":
                    fixed.append((name_of(k), False))
                    expect_type = True
                elif k.is_named:
                    if expect_type:
                        expect_type = False
                    else:
                        fixed.append(("_", False))
            out[-1][1] = Callable(tuple(fixed))
    return [(a, b) for a, b in out]


def collect(tree_root: Node, decls: Decls, public_only: bool) -> None:
    def is_public(n: Node) -> bool:
        if not public_only:
            return True
        for c in n.children:
            if c.type == "modifiers":
                t = text(c)
                return "public" in t or "open" in t
        return False

    def visit(n: Node, owner: TypeDecl | None, owner_is_public: bool):
        t = n.type
        if t in ("class_declaration", "protocol_declaration"):
            nm = n.child_by_field_name("name")
            tname = base_type(nm) if nm is not None and nm.type == "user_type" else name_of(nm)
            kind = "protocol" if t == "protocol_declaration" else next(
                (text(c) for c in n.children if text(c) in ("class", "struct", "enum", "extension", "actor")), "class")
            pub = is_public(n) or kind == "extension"
            # uniffi declares its error enums without `public` on the same line in some versions
            if public_only and not pub and kind == "enum":
                pub = n.prev_sibling is not None and text(n.prev_sibling) == "public"
            if pub or not public_only:
                td = decls.types.get(tname)
                if td is None:
                    td = TypeDecl(kind)
                    decls.types[tname] = td
                decls.names.add(tname)
                for c in n.children:
                    if c.type in ("class_body", "enum_class_body", "protocol_body"):
                        for m in c.named_children:
                            visit(m, td, True)
            return
        if t in ("function_declaration", "protocol_function_declaration"):
            nm = name_of(n.child_by_field_name("name"))
            decls.names.add(nm)
            rt = return_type(n)
            if rt:
                decls.returns[nm].add(rt)
            if owner is not None:
                if is_public(n) or owner.kind == "protocol" or not public_only:
                    owner.members[nm].append(Callable(params_of(n), rt))
                    if rt:
                        owner.member_types.setdefault(nm, rt)
            elif is_public(n):
                decls.funcs[nm].append(Callable(params_of(n), rt))
            if not public_only:
                for c in walk(n):
                    if c.type == "parameter":
                        pn = c.child_by_field_name("name")
                        decls.names.add(name_of(pn))
                        ty = base_type(next((x for x in c.named_children if x.type in ("user_type", "optional_type")), None))
                        if ty:
                            decls.annotations[name_of(pn)].add(ty)
                    elif c.type in ("property_declaration", "class_declaration", "protocol_declaration") and c != n:
                        visit(c, None, False)
            return
        if t == "init_declaration":
            if owner is not None and (is_public(n) or not public_only):
                owner.members["init"].append(Callable(params_of(n)))
            return
        if t in ("property_declaration", "protocol_property_declaration"):
            pat = n.child_by_field_name("name")
            ty = None
            for c in n.named_children:
                if c.type == "type_annotation":
                    ty = base_type(c)
            names = [name_of(x) for x in walk(pat)] if pat is not None else []
            names = [x for x, node in zip(names, walk(pat)) if node.type == "simple_identifier"] if pat is not None else []
            for pn in names:
                decls.names.add(pn)
                if ty:
                    decls.annotations[pn].add(ty)
                if owner is not None and (is_public(n) or owner.kind == "protocol" or not public_only):
                    owner.members[pn].append(None)
                    if ty:
                        owner.member_types.setdefault(pn, ty)
            if not public_only:
                for c in walk(n):
                    if c.type in ("class_declaration",) and c != n:
                        visit(c, None, False)
            return
        if t == "enum_entry":
            if owner is not None:
                for cname, call in enum_case_labels(n):
                    owner.members[cname].append(call)
                    owner.case_names.add(cname)
                    decls.names.add(cname)
            return
        for c in n.named_children:
            visit(c, owner, owner_is_public)

    visit(tree_root, None, True)


def read_bindings(path: str) -> Decls:
    with open(path, "rb") as f:
        src = f.read()
    for rx in _BINDINGS_BLANKS:
        src = rx.sub(lambda m: b" " * len(m.group(0)), src)
    tree = parser().parse(src)
    d = Decls()
    collect(tree.root_node, d, public_only=True)
    # uniffi writes `public\nenum AmanatError …`: the modifier and the declaration are siblings.
    for n in walk(tree.root_node):
        if n.type == "class_declaration" and n.child_by_field_name("name") is not None:
            nm = name_of(n.child_by_field_name("name"))
            if nm not in d.types and text(n).startswith("enum"):
                d2 = Decls()
                collect(n, d2, public_only=False)
                d.types.update(d2.types)
    # Vault's constructors and methods are declared on the class; the *Protocol duplicates are kept
    # too (same names), harmless.
    return d


def read_shell(files: list[str]) -> tuple[Decls, dict]:
    d = Decls()
    trees = {}
    for f in files:
        with open(f, "rb") as fh:
            tree = parser().parse(fh.read())
        trees[f] = tree
        collect(tree.root_node, d, public_only=False)
        for n in walk(tree.root_node):
            if n.type == "function_declaration" and n.child_by_field_name("name") is not None:
                d.names.add(name_of(n.child_by_field_name("name")))
            if n.type == "simple_identifier" and n.parent is not None:
                pt = n.parent.type
                if pt in ("pattern", "value_binding_pattern", "parameter", "lambda_parameter",
                          "enum_entry", "catch_block", "if_statement", "guard_statement",
                          "for_statement", "binding_pattern"):
                    d.names.add(name_of(n))
            if n.type == "type_identifier" and n.parent is not None and n.parent.type in (
                    "class_declaration", "protocol_declaration", "typealias_declaration", "type_parameter"):
                d.names.add(name_of(n))
                d.types.setdefault(name_of(n), TypeDecl("shell"))
    return d, trees


# ---------------------------------------------------------------- name check


DEBUG = bool(os.environ.get("SWIFTCHECK_DEBUG"))
SWIFT_KEYWORDS = {"defer", "self", "super", "init", "some", "any"}


def load_platform(path: str) -> set:
    out = set()
    if path and os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
        for line in lines:
            line = line.split("#", 1)[0].strip()
            if line:
                out.update(line.split())
    return out


def call_labels(call: Node) -> tuple | None:
    suffix = next((c for c in call.children if c.type == "call_suffix"), None)
    if suffix is None:
        return None
    args = next((c for c in suffix.children if c.type == "value_arguments"), None)
    labels = []
    if args is not None:
        for a in args.named_children:
            if a.type != "value_argument":
                continue
            lab = next((c for c in a.children if c.type == "value_argument_label"), None)
            labels.append(name_of(lab) if lab is not None else "_")
    # A trailing closure (lambda_literal in the suffix, after the parentheses) is one more argument
    # whose label is not written.
    if any(c.type == "lambda_literal" for c in suffix.children):
        labels.append("*")
    return tuple(labels)


def labels_match(call: tuple, decl: tuple) -> bool:
    i = 0
    for lab, has_default in decl:
        if i < len(call) and (call[i] == lab or call[i] == "*"):
            i += 1
        elif has_default:
            continue
        else:
            return False
    return i == len(call)


def selector(name: str, labels: tuple | None) -> str:
    if labels is None:
        return name
    return f"{name}(" + "".join(f"{'_' if l == '*' else l}:" for l in labels) + ")"


def unwrap_expr(n: Node) -> Node:
    while n.type in ("try_expression", "await_expression", "parenthesized_expression", "postfix_expression",
                     "force_unwrap_expression", "optional_chaining_expression") and n.named_children:
        n = n.named_children[-1] if n.type in ("try_expression", "await_expression") else n.named_children[0]
    return n


def check_names(bindings_path, shell_dir: str, platform_path: str | None = None) -> list[str]:
    """The rules, for every .swift file under `shell_dir` (the generated file itself excluded):

    1. A type name that the shell does not declare must be declared in the bindings or listed in
       the platform list (Swift/Apple SDK names). A platform-list name that the bindings also
       declare as a type is an error (it would hide a rename).
    2. `T.member` / `T.member(labels)` with T a bindings type: `member` must be declared on T, and
       for a call its argument labels must match one declaration (defaults may be left out).
    3. `x.member(...)` where x's type is known to be a bindings type — x declared with a type
       annotation (`let vault: Vault`, a parameter), or x a call of a function whose declared return
       type is one — is checked as in 2 against that type.
    4. Other `x.member` (receiver type unknown to this checker) and `.member` (implicit member):
       `member` must be declared somewhere — bindings, the shell, or the platform list.
    5. A free function call `f(...)` the shell does not declare: must be a bindings function with
       matching labels, or in the platform list.
    """
    b = read_bindings(bindings_path) if isinstance(bindings_path, str) else bindings_path
    # `extension Data` and the like in the bindings do not make those types the bindings' own.
    b = Decls(types={k: v for k, v in b.types.items() if v.kind != "extension"}, funcs=b.funcs,
              names=b.names, annotations=b.annotations, returns=b.returns)
    files = [f for f in swift_files([shell_dir]) if os.path.basename(f) != "AmanatCore.swift"]
    s, trees = read_shell(files)
    platform = load_platform(platform_path) if platform_path else set()
    probs = []
    for p in sorted(platform & set(b.types)):
        probs.append(f"{platform_path}: {p!r} is a bindings type; remove it from the platform list")
    b_members = b.all_members()
    shell_types = {k for k, v in s.types.items()}

    scope_types = ("function_declaration", "init_declaration", "lambda_literal", "class_body",
                   "source_file", "computed_property", "protocol_body")

    declared_cache: dict = {}

    def declared_here(scope: Node, name: str):
        key = (scope.id, name)
        if key not in declared_cache:
            declared_cache[key] = None  # re-entry while computing: nothing known yet
            declared_cache[key] = declared_here_inner(scope, name)
        return declared_cache[key] or []

    def declared_here_inner(scope: Node, name: str):
        """Declarations of `name` inside `scope` (parameters, lets/vars, closure parameters), each as
        its annotated type name or "" when it has none; nested functions are not searched."""
        found = []
        stack = list(scope.children)
        while stack:
            x = stack.pop()
            if x.type in ("function_declaration", "init_declaration") and x != scope:
                # its parameters belong to it, not to `scope`; only its name is declared here
                continue
            if x.type == "parameter":
                pn = x.child_by_field_name("name")
                if pn is not None and name_of(pn) == name:
                    ty = next((c for c in x.named_children if c.type in ("user_type", "optional_type", "array_type")), None)
                    found.append(base_type(ty) or "")
                continue
            if x.type == "for_statement":
                pat = next((c for c in x.named_children if c.type == "pattern"), None)
                if pat is not None and any(c.type == "simple_identifier" and name_of(c) == name for c in pat.named_children):
                    kids = x.children
                    i = next((k for k, c in enumerate(kids) if c.type == "in"), None)
                    seq = kids[i + 1] if i is not None and i + 1 < len(kids) else None
                    found.append(element_of(expr_type(seq)) or "" if seq is not None else "")
            if x.type == "lambda_parameter":
                if any(c.type == "simple_identifier" and name_of(c) == name for c in x.named_children):
                    ty = next((c for c in x.named_children if c.type in ("user_type", "optional_type", "array_type")), None)
                    found.append(base_type(ty) or closure_param_type(x) or "")
                continue
            if x.type == "property_declaration":
                pat = x.child_by_field_name("name")
                if pat is not None and any(c.type == "simple_identifier" and name_of(c) == name for c in walk(pat)):
                    ann = next((c for c in x.named_children if c.type == "type_annotation"), None)
                    ty = base_type(ann) if ann is not None else None
                    if ty is None:
                        val = x.child_by_field_name("value")
                        if val is not None:
                            t2 = expr_type(val)
                            ty = t2 if t2 and not t2.startswith("type:") else None
                    found.append(ty or "")
            if x.type in ("if_statement", "guard_statement", "while_statement"):
                kids = x.children
                for i, c in enumerate(kids[:-1]):
                    if c.type == "value_binding_pattern" and kids[i + 1].type == "simple_identifier" \
                            and name_of(kids[i + 1]) == name:
                        ty = None
                        j = i + 2
                        if j < len(kids) and kids[j].type == "type_annotation":
                            ty = base_type(kids[j])
                        elif j + 1 < len(kids) and kids[j].type == "=":
                            rhs = kids[j + 1]
                            if rhs.type == "simple_identifier" and name_of(rhs) == name:
                                continue  # `if let x = x`: the same value unwrapped, typed by the outer x
                            t2 = expr_type(rhs)
                            ty = t2 if t2 and not t2.startswith("type:") else None
                        found.append(ty or "")
            if x.type in ("pattern", "value_binding_pattern") and x.parent is not None and x.parent.type in (
                    "if_statement", "guard_statement", "switch_pattern", "catch_block"):
                if any(c.type == "simple_identifier" and name_of(c) == name for c in x.named_children):
                    found.append("")
            stack.extend(x.children)
        return found

    def known(t: str | None) -> bool:
        return bool(t) and (t in b.types or (element_of(t) or "") in b.types)

    ELEMENT_CLOSURES = {"map", "compactMap", "flatMap", "filter", "forEach", "first", "contains",
                        "sorted", "allSatisfy", "firstIndex", "last", "min", "max", "reduce"}

    def closure_param_type(param: Node) -> str | None:
        """The type of a closure's only parameter when the closure iterates a known array:
        `xs.map { x in … }` and friends, `ForEach(xs) { x in … }` (SwiftUI)."""
        lam = param
        while lam is not None and lam.type != "lambda_literal":
            lam = lam.parent
        if lam is None:
            return None
        ftype = next((c for c in lam.named_children if c.type == "lambda_function_type"), None)
        plist = next((c for c in ftype.named_children if c.type == "lambda_function_type_parameters"), None) if ftype else None
        params = [c for c in plist.named_children if c.type == "lambda_parameter"] if plist else []
        if len(params) != 1 or params[0] != param:
            return None
        return closure_element(lam)

    def closure_element(lam: Node) -> str | None:
        suffix = lam.parent
        call = suffix.parent if suffix is not None and suffix.type == "call_suffix" else None
        if call is None or call.type != "call_expression" or not call.named_children:
            return None
        callee = call.named_children[0]
        if callee.type == "navigation_expression":
            suf = callee.child_by_field_name("suffix")
            sn = name_of(suf.named_children[-1]) if suf is not None and suf.named_children else ""
            tgt = callee.child_by_field_name("target")
            if sn in ELEMENT_CLOSURES and tgt is not None:
                return element_of(expr_type(tgt))
            return None
        if callee.type == "simple_identifier" and name_of(callee) == "ForEach":
            va = next((c for c in suffix.children if c.type == "value_arguments"), None)
            first = next((c for c in va.named_children if c.type == "value_argument"), None) if va else None
            if first is not None and first.named_children:
                return element_of(expr_type(first.named_children[-1]))
        return None

    resolving: set = set()

    def var_type(ident: Node) -> str | None:
        key = (ident.start_byte, ident.end_byte, ident.id)
        if key in resolving:
            return None  # `if let x = x`: the inner x is resolved from the outer one
        resolving.add(key)
        try:
            return var_type_inner(ident)
        finally:
            resolving.discard(key)

    def var_type_inner(ident: Node) -> str | None:
        name = name_of(ident)
        a = ident.parent
        while a is not None:
            if a.type in scope_types:
                found = declared_here(a, name)
                if found:
                    kinds = set(found)
                    if len(kinds) == 1 and "" not in kinds:
                        t = next(iter(kinds))
                        return t if (t in b.types or (element_of(t) or "") in b.types) else None
                    return None
            a = a.parent
        return None

    def expr_type(n: Node) -> str | None:
        n = unwrap_expr(n)
        if n.type == "as_expression":
            ty = next((c for c in n.named_children[1:] if c.type in ("user_type", "optional_type")), None)
            t = base_type(ty)
            return t if t in b.types else None
        if n.type == "simple_identifier":
            nm = name_of(n)
            if nm in b.types and nm not in shell_types:
                return "type:" + nm
            if nm == "$0":
                lam = n.parent
                while lam is not None and lam.type != "lambda_literal":
                    lam = lam.parent
                return closure_element(lam) if lam is not None else None
            return var_type(n)
        if n.type == "navigation_expression":
            suf = n.child_by_field_name("suffix")
            sn = name_of(suf.named_children[-1]) if suf is not None and suf.named_children else ""
            tgt = n.child_by_field_name("target")
            tt = expr_type(tgt) if tgt is not None else None
            if tt and not tt.startswith("type:") and tt in b.types:
                return b.types[tt].member_types.get(sn)
            if tt and element_of(tt) and sn in ("first", "last"):
                return element_of(tt)
            return None
        if n.type == "call_expression":
            callee = unwrap_expr(n.named_children[0])
            if callee.type == "simple_identifier":
                nm = name_of(callee)
                if nm in b.types and nm not in shell_types:
                    return nm
                rs = s.returns.get(nm, set()) | {c.returns for c in b.funcs.get(nm, []) if c.returns}
                rs = {r for r in rs if r}
                return next(iter(rs)) if len(rs) == 1 and known(next(iter(rs))) else None
            if callee.type == "navigation_expression":
                suf = callee.child_by_field_name("suffix")
                sn = name_of(suf.named_children[-1]) if suf is not None and suf.named_children else ""
                tgt = callee.child_by_field_name("target")
                tt = expr_type(tgt) if tgt is not None else None
                if tt:
                    tn = tt[5:] if tt.startswith("type:") else tt
                    if tn in b.types:
                        r = b.types[tn].member_types.get(sn)
                        if r:
                            return r
                rs = {r for r in s.returns.get(sn, set()) if r}
                return next(iter(rs)) if len(rs) == 1 and known(next(iter(rs))) else None
        return None

    def check_member(where: str, tname: str, member: str, labels: tuple | None):
        td = b.types[tname]
        decls = td.members.get(member)
        if decls is None and tname.endswith("Protocol") is False and (tname + "Protocol") in b.types:
            decls = b.types[tname + "Protocol"].members.get(member)
        if decls is None:
            probs.append(f"{where}: {tname}.{member} is not in the bindings")
            return
        if labels is None:
            return
        callables = [c for c in decls if c is not None]
        if not callables:
            return  # a property holding a closure would be called; none in the bindings
        if not any(labels_match(labels, c.labels) for c in callables):
            have = ", ".join(selector(member, tuple(l for l, _ in c.labels)) for c in callables)
            probs.append(f"{where}: {tname}.{selector(member, labels)} does not match the bindings ({have})")

    def subject_type(pattern: Node) -> str | None:
        """The type a `case` pattern is matched against: the switch subject's."""
        a = pattern.parent
        if a is not None and a.type == "switch_pattern":
            entry = a.parent
            sw = entry.parent if entry is not None else None
            if sw is not None and sw.type == "switch_statement":
                subj = next((c for c in sw.named_children), None)
                t = expr_type(subj) if subj is not None else None
                if t is not None:
                    return t[5:] if t.startswith("type:") else t
        return None

    def check_pattern(pat: Node, where: str, kids=None, subject: str | None = None):
        """`case let T.Case(a, _, _)` / `.Case(label: x)`: the case must exist on T (given, or the
        switch subject's type when that is known) with that many associated values."""
        if kids is None:
            kids = pat.children
        idx = next((i for i, c in enumerate(kids) if c.type == "simple_identifier"), None)
        if idx is None:
            return
        explicit = next((c for c in kids[:idx] if c.type == "user_type"), None)
        dotted = idx > 0 and kids[idx - 1].type == "."
        if explicit is None and not dotted:
            return
        tname = base_type(explicit) if explicit is not None else (subject or subject_type(pat))
        case = name_of(kids[idx])
        if explicit is None and case in ("some", "none"):
            return  # Optional's own cases (`case .some(.x) = value as? T`)
        rest = kids[idx + 1:]
        if tname is None or tname not in b.types or tname in shell_types:
            if explicit is None and case not in known_anywhere:
                probs.append(f"{where}: .{case} is neither in the bindings, the shell nor the platform list")
            return
        decls = b.types[tname].members.get(case)
        if decls is None:
            probs.append(f"{where}: {tname}.{case} is not in the bindings")
            return
        if not any(c.type == "(" for c in rest):
            return  # `case .Locked:` matches whatever the payload
        labels = []
        pending = None
        for c in rest:
            if c.type == "simple_identifier":
                pending = name_of(c)
            elif c.type == "pattern":
                labels.append(pending or "_")
                pending = None
        callables = [c for c in decls if c is not None]
        def fits(c: Callable) -> bool:
            if len(c.labels) != len(labels):
                return False
            return all(l == "_" or l == d for l, (d, _) in zip(labels, c.labels))
        if not any(fits(c) for c in callables):
            have = ", ".join(selector(case, tuple(l for l, _ in c.labels)) for c in callables) or case
            probs.append(f"{where}: pattern {tname}.{case} with {len(labels)} value(s) does not match the bindings ({have})")

    def check_exhaustive(sw: Node, where: str):
        """A `switch` over a bindings enum without `default` must name every case: a case added
        to the FFI (a new `AnswerReason`) is a compile error on the Mac, so it fails here too."""
        subj = next((c for c in sw.named_children), None)
        t = expr_type(subj) if subj is not None else None
        t = t[5:] if t and t.startswith("type:") else t
        if t is None or t not in b.types or b.types[t].kind != "enum" or t in shell_types:
            return
        entries = [c for c in sw.named_children if c.type == "switch_entry"]
        if any(any(x.type == "default_keyword" for x in e.children) for e in entries):
            return
        covered = set()
        for e in entries:
            for sp in e.named_children:
                if sp.type != "switch_pattern":
                    continue
                pat = next((x for x in sp.named_children if x.type == "pattern"), None)
                if pat is None:
                    continue
                ident = next((x for x in pat.children if x.type == "simple_identifier"), None)
                if ident is not None:
                    covered.add(name_of(ident))
                else:
                    return  # a pattern this checker does not read (`case let x`): assume it covers
        cases = set(b.types[t].case_names)
        missing = sorted(cases - covered)
        if missing:
            probs.append(f"{where}: switch over {t} misses " + ", ".join("." + m for m in missing))

    def context_type(n: Node) -> str | None:
        """The type an implicit member `.x` must belong to, where this checker can tell: the
        enclosing function's declared return type for `return .x`."""
        p = n.parent
        if p is not None and p.type == "call_expression":
            p = p.parent
        if p is not None and p.type == "control_transfer_statement" and text(p).startswith("return"):
            a = p.parent
            while a is not None and a.type not in ("function_declaration", "lambda_literal", "computed_property"):
                a = a.parent
            if a is not None and a.type == "function_declaration":
                rt = return_type(a)
                return rt if rt in b.types and rt not in shell_types else None
        return None

    def check_implicit(n: Node, member: str, where: str):
        parent = n.parent
        labels = call_labels(parent) if parent is not None and parent.type == "call_expression" \
            and parent.named_children[0] == n else None
        ctx = context_type(n)
        if ctx is not None:
            check_member(where, ctx, member, labels)
            return
        if member not in known_anywhere:
            probs.append(f"{where}: .{member} is neither in the bindings, the shell nor the platform list")
            return
        # Untyped context: if only the bindings know the name, its labels must fit one of them.
        if labels is not None and member in b_members and member not in s.names and member not in platform:
            decls = [c for t in b.types.values() for c in t.members.get(member, []) if c is not None]
            if decls and not any(labels_match(labels, c.labels) for c in decls):
                probs.append(f"{where}: .{selector(member, labels)} matches no declaration in the bindings")

    def check_key_path(n: Node, where: str):
        """`ForEach(xs, id: \\.id)`: the key path's root is the element type of the first argument."""
        suf = n.child_by_field_name("suffix")
        member = name_of(suf.named_children[-1]) if suf is not None and suf.named_children else ""
        arg = n.parent
        va = arg.parent if arg is not None else None
        first = next((c for c in va.named_children if c.type == "value_argument"), None) if va is not None else None
        if first is None or first == arg or not first.named_children:
            return
        elem = element_of(expr_type(first.named_children[-1]))
        if elem in b.types and member != "self":
            check_member(where, elem, member, None)
        elif member not in known_anywhere:
            probs.append(f"{where}: \\.{member} is neither in the bindings, the shell nor the platform list")

    def check_conformance(n: Node, where: str):
        """A shell class adopting a bindings protocol (KeyProvider, Transport, SyncObserver) must
        declare each of its methods with the same argument labels."""
        protos = []
        for c in n.children:
            if c.type == "inheritance_specifier":
                t = base_type(next((x for x in c.named_children if x.type == "user_type"), None))
                if t in b.types and b.types[t].kind == "protocol":
                    protos.append(t)
        if not protos:
            return
        body = next((c for c in n.children if c.type == "class_body"), None)
        mine = defaultdict(list)
        if body is not None:
            for m in body.named_children:
                if m.type == "function_declaration":
                    mine[name_of(m.child_by_field_name("name"))].append(tuple(l for l, _ in params_of(m)))
        cname = name_of(n.child_by_field_name("name"))
        for proto in protos:
            for member, decls in b.types[proto].members.items():
                for d in decls:
                    if d is None:
                        continue
                    want = tuple(l for l, _ in d.labels)
                    if want not in mine.get(member, []):
                        probs.append(f"{where}: {cname} adopts {proto} but does not declare {selector(member, want)}")

    known_anywhere = b_members | set(b.funcs) | s.names | platform | set(b.types) | shell_types

    for f, tree in trees.items():
        for n in walk(tree.root_node):
            r, c = n.start_point
            where = f"{f}:{r + 1}:{c + 1}"
            if n.type == "type_identifier":
                nm = name_of(n)
                if n.parent is not None and n.parent.parent is not None and n.parent.parent.type == "attribute":
                    continue  # @main, @unchecked, @discardableResult …
                if nm in shell_types or nm in b.types or nm in platform:
                    continue
                probs.append(f"{where}: type {nm} is neither in the bindings, the shell nor the platform list")
            elif n.type == "navigation_expression" and n.named_children and n.named_children[0].type == "key_path_expression":
                check_key_path(n, where)
            elif n.type == "navigation_expression":
                suf = n.child_by_field_name("suffix")
                if suf is None or not suf.named_children:
                    continue
                member = name_of(suf.named_children[-1])
                if suf.named_children[-1].type != "simple_identifier":
                    continue  # tuple index `.0`
                parent = n.parent
                labels = call_labels(parent) if parent is not None and parent.type == "call_expression" and parent.named_children[0] == n else None
                tgt = n.child_by_field_name("target")
                if tgt is None:
                    # implicit member `.foo`
                    if member not in known_anywhere:
                        probs.append(f"{where}: .{member} is neither in the bindings, the shell nor the platform list")
                    continue
                tt = expr_type(tgt)
                if DEBUG:
                    print(f"debug {where}: {text(tgt)[:30]!r}.{member} -> {tt}", file=sys.stderr)
                if tt is not None:
                    tn = tt[5:] if tt.startswith("type:") else tt
                    if tn in b.types and tn not in shell_types:
                        if member in ("self", "Type"):
                            continue
                        check_member(where, tn, member, labels)
                        continue
                if member not in known_anywhere:
                    probs.append(f"{where}: .{member} is neither in the bindings, the shell nor the platform list")
            elif n.type == "pattern":
                check_pattern(n, where)
            elif n.type == "switch_statement":
                check_exhaustive(n, where)
            elif n.type in ("if_statement", "guard_statement"):
                # `if case let T.x(a, b) = v` / `guard case .x = v`: the pattern's tokens sit in the
                # statement itself; the subject follows the `=`.
                kids = n.children
                i = 0
                while i < len(kids):
                    if kids[i].type == "case":
                        j = next((k for k in range(i + 1, len(kids)) if kids[k].type == "="), None)
                        if j is None or j + 1 >= len(kids):
                            break
                        st = expr_type(kids[j + 1])
                        st = st[5:] if st and st.startswith("type:") else st
                        check_pattern(n, where, kids=kids[i + 1:j], subject=st)
                        i = j + 1
                    else:
                        i += 1
            elif n.type == "prefix_expression" and n.children and n.children[0].type == "." \
                    and len(n.named_children) == 1 and n.named_children[0].type == "simple_identifier":
                check_implicit(n, name_of(n.named_children[0]), where)
            elif n.type == "navigation_expression" and n.named_children and n.named_children[0].type == "key_path_expression":
                check_key_path(n, where)
            elif n.type == "class_declaration":
                check_conformance(n, where)
            elif n.type == "call_expression":
                callee = n.named_children[0] if n.named_children else None
                if callee is None or callee.type != "simple_identifier":
                    continue
                nm = name_of(callee)
                labels = call_labels(n)
                if nm in SWIFT_KEYWORDS:
                    continue
                if nm in shell_types or (nm in s.names and nm not in b.types and nm not in b.funcs):
                    continue
                if nm in b.types:
                    check_member(where, nm, "init", labels)
                elif nm in b.funcs:
                    if not any(labels_match(labels or (), c.labels) for c in b.funcs[nm]):
                        have = ", ".join(selector(nm, tuple(l for l, _ in c.labels)) for c in b.funcs[nm])
                        probs.append(f"{where}: {selector(nm, labels)} does not match the bindings ({have})")
                elif nm in s.names or nm in platform:
                    continue
                else:
                    probs.append(f"{where}: function {nm} is neither in the bindings, the shell nor the platform list")
    return probs


# ---------------------------------------------------------------- strings check

_STRING_LINE = re.compile(r'^\s*"((?:[^"\\]|\\.)*)"\s*=\s*"((?:[^"\\]|\\.)*)"\s*;\s*$')
_PLACEHOLDER = re.compile(r"%(?:\d+\$)?(?:ll|l)?[@dfsu]")


def read_strings(path: str) -> tuple[dict, list]:
    entries, probs = {}, []
    in_comment = False
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    for i, line in enumerate(lines, 1):
        s = line.strip()
        if in_comment:
            if "*/" in s:
                in_comment = False
            continue
        if not s or s.startswith("//"):
            continue
        if s.startswith("/*"):
            in_comment = "*/" not in s
            continue
        m = _STRING_LINE.match(line)
        if not m:
            probs.append(f"{path}:{i}: not a `\"key\" = \"value\";` line")
            continue
        if m.group(1) in entries:
            probs.append(f"{path}:{i}: duplicate key {m.group(1)!r}")
        entries[m.group(1)] = m.group(2)
    return entries, probs


LANGS = ("en", "ru", "uz")


def check_strings(res_dir: str) -> list[str]:
    probs = []
    tables = {}
    for lang in LANGS:
        p = os.path.join(res_dir, f"{lang}.lproj", "Localizable.strings")
        if not os.path.exists(p):
            probs.append(f"{p}: missing")
            continue
        entries, pr = read_strings(p)
        probs += pr
        tables[lang] = (p, entries)
    if len(tables) != len(LANGS):
        return probs
    keys = set().union(*(set(e) for _, e in tables.values()))
    for k in sorted(keys):
        ph = {}
        for lang, (p, e) in tables.items():
            if k not in e:
                probs.append(f"{p}: key {k!r} missing")
            elif not e[k].strip():
                probs.append(f"{p}: key {k!r} is empty")
            else:
                ph[lang] = sorted(_PLACEHOLDER.findall(e[k]))
        if len(set(map(tuple, ph.values()))) > 1:
            probs.append(f"key {k!r}: format placeholders differ between languages: {ph}")
    # Uzbek in Latin script: no Cyrillic letters (except the language names, each in its own script).
    p, e = tables["uz"]
    for k, v in e.items():
        if not k.startswith("language_") and re.search(r"[\u0400-\u04FF]", v):
            probs.append(f"{p}: key {k!r} is not in Latin script")
    return probs


def used_string_keys(shell_dir: str) -> set:
    """String keys the shell looks up: every string literal in the first argument of a `t(…)` /
    `tr(…)` call (ternaries included), and every literal a function named `…Key` returns."""
    keys = set()

    def literals(n: Node):
        for x in walk(n):
            if x.type == "line_string_literal" and not any(c.type == "interpolated_expression" for c in x.children):
                keys.add(text(x)[1:-1])

    for f in swift_files([shell_dir]):
        with open(f, "rb") as fh:
            tree = parser().parse(fh.read())
        for n in walk(tree.root_node):
            if n.type == "call_expression" and n.named_children:
                callee = n.named_children[0]
                name = ""
                if callee.type == "simple_identifier":
                    name = name_of(callee)
                elif callee.type == "navigation_expression":
                    suf = callee.child_by_field_name("suffix")
                    name = name_of(suf.named_children[-1]) if suf is not None and suf.named_children else ""
                if name in ("t", "tr"):
                    args = call_labels(n)
                    suffix = next((c for c in n.children if c.type == "call_suffix"), None)
                    va = next((c for c in suffix.children if c.type == "value_arguments"), None) if suffix else None
                    first = next((c for c in va.named_children if c.type == "value_argument"), None) if va else None
                    if first is not None and args is not None:
                        literals(first)
            elif n.type == "function_declaration":
                nm = n.child_by_field_name("name")
                if nm is not None and name_of(nm).endswith("Key"):
                    for x in walk(n):
                        if x.type == "control_transfer_statement" and text(x).startswith("return"):
                            literals(x)
    return keys


# ---------------------------------------------------------------- main


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    cmd = argv[1]
    if cmd == "parse":
        probs = []
        files = swift_files(argv[2:])
        if not files:
            probs.append("no .swift files found")
        for f in files:
            probs += parse_problems(f)
        for p in probs:
            print(p)
        print(f"parse: {len(files)} files, {len(probs)} problems")
        return 1 if probs else 0
    if cmd == "names":
        platform = argv[4] if len(argv) > 4 else None
        probs = check_names(argv[2], argv[3], platform)
        for p in probs:
            print(p)
        print(f"names: {len(probs)} problems")
        return 1 if probs else 0
    if cmd == "strings":
        probs = check_strings(argv[2])
        if len(argv) > 3:
            en, _ = read_strings(os.path.join(argv[2], "en.lproj", "Localizable.strings"))
            for k in sorted(used_string_keys(argv[3]) - set(en)):
                probs.append(f"key {k!r} used in the shell but not in Localizable.strings")
        for p in probs:
            print(p)
        print(f"strings: {len(probs)} problems")
        return 1 if probs else 0
    if cmd == "dump":
        b = read_bindings(argv[2])
        for tn in sorted(b.types):
            td = b.types[tn]
            ms = []
            for m, cs in sorted(td.members.items()):
                for c in cs:
                    ms.append(m if c is None else selector(m, tuple(l for l, _ in c.labels)) + (f"->{c.returns}" if c.returns else ""))
            print(f"{td.kind} {tn}: " + "  ".join(ms))
        for fn, cs in sorted(b.funcs.items()):
            for c in cs:
                print("func " + selector(fn, tuple(l for l, _ in c.labels)) + (f"->{c.returns}" if c.returns else ""))
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
