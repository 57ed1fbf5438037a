#!/usr/bin/env python3
"""Reference renderings of chat templates, made the way Hugging Face transformers makes them.

transformers' apply_chat_template(..., tokenize=False) compiles the template with
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[its
AssistantTracker, jinja2.ext.loopcontrols]), replaces the `tojson` filter with json.dumps
(ensure_ascii=False, no key sorting), adds the globals raise_exception and strftime_now, and
renders with messages, tools (None when absent), documents=None, add_generation_prompt, the
tokenizer's special tokens and any extra kwargs. This script does exactly that with Python's
jinja2 (Debian's python3-jinja2), so actorserve's C++ interpreter can be checked against it
in CI without transformers. On a machine that has transformers, `transformers` mode renders
the same conversations through AutoTokenizer.apply_chat_template to check this script.

Modes (all write JSON to --out, or stdout):
  cases --conversations FILE [--only NAME,...] [--now EPOCH] SOURCE...
      SOURCE is a tokenizer folder (tokenizer_config.json, chat_template.jinja). For every
      conversation (or those named by --only), with add_generation_prompt false then true:
      {"FOLDER_NAME": [{"conversation": NAME, "add_generation_prompt": B, "output": TEXT}
                       | {..., "error": MESSAGE, "error_type": PYTHON_EXCEPTION_NAME}], ...}
      keyed by the folder's last path component. A folder without a chat template gives
      {"FOLDER_NAME": {"error": ...}}.
  features --features FILE --context FILE [--now EPOCH]
      Renders each template of a feature file (see tests/fixtures/chat_template/features.txt)
      with the default context updated by the feature's own context:
      {"NAME": {"output": TEXT} | {"error": MESSAGE, "error_type": NAME}, ...}
  transformers --conversations FILE SOURCE...
      Same output as `cases`, through transformers itself (strftime_now uses the real clock).
  compare A.json B.json
      Prints every case where two `cases`/`transformers` outputs differ (outputs, or one side
      failing); exits 1 if any does. The check of this script against transformers, on a
      machine that has it:
        chat_template_reference.py cases --conversations C SOURCES... --out a.json
        chat_template_reference.py transformers --conversations C SOURCES... --out b.json
        chat_template_reference.py compare a.json b.json
"""

import argparse
import datetime
import json
import os
import sys

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

SPECIAL_TOKEN_KEYS = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]


class GenerationBlocks(Extension):
    """transformers' {% generation %}...{% endgeneration %} marks assistant text; rendering
    without an assistant mask outputs the body unchanged."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render_body"), [], [], body).set_lineno(lineno)

    def _render_body(self, caller):
        return caller()


def make_environment(now_epoch):
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        now = datetime.datetime.now() if now_epoch is None else datetime.datetime.fromtimestamp(now_epoch)
        return now.strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationBlocks, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def load_tokenizer_folder(folder):
    """(templates by name, special tokens) as transformers reads them from a tokenizer folder."""
    config_path = os.path.join(folder, "tokenizer_config.json")
    config = {}
    if os.path.exists(config_path):
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    templates = {}
    chat_template = config.get("chat_template")
    if isinstance(chat_template, str):
        templates["default"] = chat_template
    elif isinstance(chat_template, list):
        for entry in chat_template:
            templates[entry["name"]] = entry["template"]
    jinja_path = os.path.join(folder, "chat_template.jinja")
    if os.path.exists(jinja_path):
        with open(jinja_path, encoding="utf-8") as f:
            templates["default"] = f.read()
    extra_dir = os.path.join(folder, "additional_chat_templates")
    if os.path.isdir(extra_dir):
        for name in sorted(os.listdir(extra_dir)):
            if name.endswith(".jinja"):
                with open(os.path.join(extra_dir, name), encoding="utf-8") as f:
                    templates[name[: -len(".jinja")]] = f.read()

    def token_text(value):
        if isinstance(value, dict):
            return value.get("content")
        return value

    special = {}
    for key in SPECIAL_TOKEN_KEYS:
        text = token_text(config.get(key))
        if text:
            special[key] = text
    additional = [token_text(t) for t in config.get("additional_special_tokens") or []]
    additional = [t for t in additional if t is not None]
    if additional:
        special["additional_special_tokens"] = additional
    return templates, special


def select_template(templates, has_tools):
    if has_tools and "tool_use" in templates:
        return templates["tool_use"]
    return templates["default"]


_compiled = {}


def compile_cached(env, template):
    """Compiling is most of the cost of a rendering; each template is compiled once."""
    if template not in _compiled:
        _compiled[template] = env.from_string(template)
    return _compiled[template]


def render_result(render):
    try:
        return {"output": render()}
    except Exception as e:  # every failure is data for the comparison
        return {"error": str(e), "error_type": type(e).__name__}


def render_conversation(env, template, special, conversation, add_generation_prompt):
    if not conversation["messages"]:
        # transformers checks this before rendering (seen with transformers 5.17)
        raise ValueError("Cannot apply chat template to an empty conversation. Provide at least one message.")
    compiled = compile_cached(env, template)
    kwargs = dict(special)
    kwargs.update(conversation.get("extra") or {})
    return compiled.render(messages=conversation["messages"], tools=conversation.get("tools"), documents=None,
                           add_generation_prompt=add_generation_prompt, **kwargs)


def run_cases(args):
    with open(args.conversations, encoding="utf-8") as f:
        conversations = json.load(f)
    if args.only:
        wanted = args.only.split(",")
        conversations = [c for c in conversations if c["name"] in wanted]
    env = make_environment(args.now)
    out = {}
    for source in args.sources:
        key = os.path.basename(os.path.normpath(source))
        templates, special = load_tokenizer_folder(source)
        if not templates:
            out[key] = {"error": "no chat template", "error_type": "ValueError"}
            continue
        results = []
        for conversation in conversations:
            template = select_template(templates, bool(conversation.get("tools")))
            for agp in (False, True):
                r = render_result(lambda: render_conversation(env, template, special, conversation, agp))
                r.update({"conversation": conversation["name"], "add_generation_prompt": agp})
                results.append(r)
        out[key] = results
    return out


def run_transformers(args):
    from transformers import AutoTokenizer

    with open(args.conversations, encoding="utf-8") as f:
        conversations = json.load(f)
    out = {}
    for source in args.sources:
        tokenizer = AutoTokenizer.from_pretrained(source)
        results = []
        for conversation in conversations:
            for agp in (False, True):
                def render():
                    return tokenizer.apply_chat_template(conversation["messages"], tools=conversation.get("tools"),
                                                         add_generation_prompt=agp, tokenize=False,
                                                         **(conversation.get("extra") or {}))
                r = render_result(render)
                r.update({"conversation": conversation["name"], "add_generation_prompt": agp})
                results.append(r)
        out[os.path.basename(os.path.normpath(source))] = results
    return out


def run_compare(args):
    with open(args.sources[0], encoding="utf-8") as f:
        a = json.load(f)
    with open(args.sources[1], encoding="utf-8") as f:
        b = json.load(f)
    differences = 0
    for source in sorted(set(a) | set(b)):
        left, right = a.get(source), b.get(source)
        if not isinstance(left, list) or not isinstance(right, list):
            # no chat template: this script says so once, transformers fails every case
            no_template = lambda side: isinstance(side, dict) and "error" in side or (
                isinstance(side, list) and side and all("error" in r for r in side))
            if left != right and not (no_template(left) and no_template(right)):
                differences += 1
                print(f"{source}: {left!r} != {right!r}")
            continue
        for x, y in zip(left, right):
            same = ("output" in x and x.get("output") == y.get("output")) or ("error" in x and "error" in y)
            if not same:
                differences += 1
                print(f"{source} / {x['conversation']} / add_generation_prompt={x['add_generation_prompt']}:")
                print(f"  A: {x.get('output', x.get('error'))!r}")
                print(f"  B: {y.get('output', y.get('error'))!r}")
    print(f"{differences} differences")
    return differences


def parse_features(path):
    """Feature file: blocks that start with '### NAME'; an optional next line 'context: {JSON}';
    the remaining lines up to the next block are the template (joined with newlines)."""
    features = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    current = None
    for line in lines:
        if line.startswith("### "):
            current = {"name": line[4:].strip(), "context": {}, "lines": []}
            features.append(current)
        elif current is None:
            continue
        elif not current["lines"] and "context_seen" not in current and line.startswith("context: "):
            current["context"] = json.loads(line[len("context: "):])
            current["context_seen"] = True
        else:
            current["lines"].append(line)
    for feature in features:
        while feature["lines"] and feature["lines"][-1] == "":
            feature["lines"].pop()
    return [(f["name"], f["context"], "\n".join(f["lines"])) for f in features]


def run_features(args):
    with open(args.context, encoding="utf-8") as f:
        default_context = json.load(f)
    env = make_environment(args.now)
    out = {}
    for name, context, template in parse_features(args.features):
        variables = dict(default_context)
        variables.update(context)
        out[name] = render_result(lambda: env.from_string(template).render(**variables))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["cases", "features", "transformers", "compare"])
    parser.add_argument("sources", nargs="*", help="tokenizer folders (cases, transformers)")
    parser.add_argument("--conversations")
    parser.add_argument("--only", help="comma-separated conversation names (cases)")
    parser.add_argument("--features")
    parser.add_argument("--context")
    parser.add_argument("--now", type=float, default=None, help="seconds since the epoch for strftime_now")
    parser.add_argument("--out")
    args = parser.parse_intermixed_args()
    if args.mode == "compare":
        sys.exit(1 if run_compare(args) else 0)
    if args.mode == "features":
        result = run_features(args)
    elif args.mode == "cases":
        result = run_cases(args)
    else:
        result = run_transformers(args)
    text = json.dumps(result, ensure_ascii=False, indent=1)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
