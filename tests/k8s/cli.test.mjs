// The commands and flags the manifests and Dockerfiles give `actorserve` are ones it accepts:
// every flag appears in `serve --help` / `download --help`, and the real argument lists (with
// the ConfigMap's values substituted) get past argument parsing: run with a model folder or
// mirror that does not exist, the program must fail on that, not on a flag or a value.
// Also: every file the Dockerfiles COPY exists and is not excluded by .dockerignore.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";

import { containerEnv, executable, expandedArgs, flagOf, overlays, render, sourceDir, statefulSet } from "./lib.mjs";

function run(args, env = {}) {
  const r = spawnSync(executable(), args, { encoding: "utf8", env: { ...process.env, ...env }, timeout: 30000 });
  return { status: r.status, out: r.stdout + r.stderr };
}

const helpFlags = {};
function flagsOf(command) {
  if (!helpFlags[command]) {
    const { status, out } = run([command, "--help"]);
    assert.equal(status, 0, `actorserve ${command} --help failed: ${out}`);
    helpFlags[command] = new Set(out.match(/--[a-z0-9][a-z0-9-]*/g));
  }
  return helpFlags[command];
}

function checkFlagsInHelp(command, args) {
  for (const a of args.slice(1)) {
    const [flag] = flagOf(a);
    assert.ok(flag, `'${a}' is not a --flag[=value] argument`);
    assert.ok(flagsOf(command).has(flag), `${flag} is not in 'actorserve ${command} --help'`);
  }
}

// CLI11 checks names and values (types, ranges, choices) while parsing and reports with exit
// codes above 100 and "Run with --help"; an error of the command itself is exit status 1 with
// "actorserve <command>: error:". Run against a model folder that does not exist, serve must
// get that far: past every flag and value, failing on the setup that needs a real pod.
function checkServeParses(args) {
  const missing = path.join(os.tmpdir(), "actorserve-no-such-model");
  const replaced = args.map((a) => (a.startsWith("--model=") ? `--model=${missing}` : a));
  if (!replaced.some((a) => a.startsWith("--model="))) replaced.push(`--model=${missing}`);
  const { status, out } = run(replaced);
  assert.doesNotMatch(out, /Run with --help/, `serve rejected its arguments:\n${out}`);
  assert.equal(status, 1, out);
  assert.match(out, /^actorserve serve: error: /m, out);
  // Where nothing else stops it first, the error is the missing model folder.
  if (!replaced.some((a) => a.startsWith("--cluster-dns")))
    assert.match(out, /no config\.json there/, `serve did not get past its arguments:\n${out}`);
}

for (const overlay of overlays) {
  test(`${overlay}: the server's and the init container's arguments are accepted`, () => {
    const objects = render(overlay);
    const sts = statefulSet(objects);
    const srv = sts.spec.template.spec.containers.find((c) => c.name === "server");
    const init = sts.spec.template.spec.initContainers.find((c) => c.name === "download");
    const srvArgs = expandedArgs(objects, srv);
    checkFlagsInHelp("serve", srvArgs);
    checkServeParses(srvArgs);

    const initArgs = expandedArgs(objects, init);
    checkFlagsInHelp("download", initArgs);
    const dir = mkdtempSync(path.join(os.tmpdir(), "actorserve-k8s-"));
    try {
      const args = initArgs.map((a) => (a.startsWith("--dir=") ? `--dir=${dir}/model` : a));
      const env = { ...containerEnv(objects, init), HF_ENDPOINT: `file://${dir}/no-mirror` };
      const { status, out } = run(args, env);
      assert.equal(status, 1, out);
      assert.match(out, /was not found in the mirror/, `download did not get past its arguments:\n${out}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

// A minimal Dockerfile reader: instructions with their continuation lines joined.
function instructions(file) {
  const text = readFileSync(path.join(sourceDir, file), "utf8").replace(/\\\n/g, " ");
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => {
      const [, op, rest] = /^(\w+)\s+(.*)$/.exec(l);
      return { op: op.toUpperCase(), rest };
    });
}

// .dockerignore patterns, with the subset of syntax we use (names, "dir-*", "**/name").
function ignored(relPath) {
  const patterns = readFileSync(path.join(sourceDir, ".dockerignore"), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  const parts = relPath.split("/");
  return patterns.some((p) => {
    const anyDepth = p.startsWith("**/");
    const re = new RegExp("^" + p.replace(/^\*\*\//, "").replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*") + "$");
    return anyDepth ? parts.some((part) => re.test(part)) : re.test(parts[0]);
  });
}

for (const file of ["Dockerfile", "Dockerfile.cpu"]) {
  test(`${file}: copies files that exist, on Ubuntu 24.04, with the project's packages`, () => {
    const ins = instructions(file);
    const froms = ins.filter((i) => i.op === "FROM").map((i) => i.rest);
    assert.ok(froms.length >= 2, "build and runtime stages");
    for (const f of froms) assert.match(f, /(ubuntu24\.04|ubuntu:24\.04)/, f);
    const copies = ins.filter((i) => i.op === "COPY" && !i.rest.startsWith("--from"));
    assert.ok(copies.length > 0);
    for (const c of copies) {
      const words = c.rest.split(/\s+/);
      for (const src of words.slice(0, -1)) {
        assert.ok(existsSync(path.join(sourceDir, src)), `${file}: COPY ${src}: no such file`);
        assert.ok(!ignored(src), `${file}: COPY ${src} is excluded by .dockerignore`);
      }
    }
    // The same Debian/Ubuntu package list as developers and CI: install-deps.sh itself.
    assert.ok(ins.some((i) => i.op === "RUN" && i.rest.includes("scripts/install-deps.sh")));
    // Runs as the manifests' non-root user.
    assert.ok(ins.some((i) => i.op === "USER" && i.rest === "10001:10001"));
  });

  test(`${file}: its entrypoint and command are accepted by actorserve`, () => {
    const ins = instructions(file);
    const entry = JSON.parse(ins.find((i) => i.op === "ENTRYPOINT").rest);
    const cmd = JSON.parse(ins.find((i) => i.op === "CMD").rest);
    assert.deepEqual(entry, ["/usr/local/bin/actorserve"]);
    assert.equal(cmd[0], "serve");
    checkFlagsInHelp("serve", cmd);
    checkServeParses(cmd);
    const expose = ins.find((i) => i.op === "EXPOSE").rest;
    assert.ok(cmd.includes(`--port=${expose}`));
  });
}

test("Dockerfile.cpu lays out the mirror the cpu-demo overlay downloads from", () => {
  const objects = render("cpu-demo");
  const env = containerEnv(objects, statefulSet(objects).spec.template.spec.initContainers[0]);
  const root = env.HF_ENDPOINT.replace(/^file:\/\//, "");
  const text = readFileSync(path.join(sourceDir, "Dockerfile.cpu"), "utf8");
  assert.ok(text.includes(`/out${root}/${path.dirname(env.MODEL_REPO)}`), `${root} is not created`);
  assert.ok(text.includes(`/out${root}/${env.MODEL_REPO}`), `${root}/${env.MODEL_REPO} is not created`);
});

test("the argument check tells a parse error from a runtime error", () => {
  assert.throws(() => checkServeParses(["serve", "--device=tpu"]), /rejected its arguments/);
  assert.throws(() => checkServeParses(["serve", "--no-such-flag"]), /rejected its arguments/);
  assert.throws(() => checkServeParses(["serve", "--max-num-seqs=many"]), /rejected its arguments/);
  checkServeParses(["serve", "--device=cpu", "--max-num-seqs=4"]);
});

test("the .dockerignore reader understands our patterns", () => {
  assert.ok(ignored("build-k8s/actorserve"));
  assert.ok(ignored("tests/k8s/node_modules/yaml"));
  assert.ok(ignored(".git"));
  assert.ok(!ignored("gateway"));
  assert.ok(!ignored("models/demo"));
});
