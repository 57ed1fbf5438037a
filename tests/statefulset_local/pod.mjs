// A pod of the rendered StatefulSet as plain processes: the sandbox (run.sh made the
// namespaces; this sets them up like a pod), volumes as folders and bind mounts, containers
// with the environment and arguments the manifest gives them, and a kubelet-like prober.

import { execFileSync, spawn } from "node:child_process";
import http from "node:http";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";

import { containerEnv, expandedArgs } from "../k8s/lib.mjs";

function sh(cmd, args) {
  execFileSync(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
}

/// Sets up the namespaces run.sh created as a pod's: loopback up, hostname = pod name,
/// cluster DNS names of this pod in /etc/hosts and a resolver that stays on loopback, `root`
/// writable and everything else read-only.
export function enterPodSandbox({ root, podName, serviceName, namespace }) {
  if (process.env.ACTORSERVE_POD_SANDBOX !== "1")
    throw new Error("statefulset_local: run through tests/statefulset_local/run.sh (it makes the pod sandbox)");
  sh("ip", ["link", "set", "lo", "up"]);
  sh("hostname", [podName]);
  sh("mount", ["--make-rprivate", "/"]);
  const etc = path.join(root, "etc");
  mkdirSync(etc, { recursive: true });
  const fqdn = `${podName}.${serviceName}.${namespace}.svc.cluster.local`;
  writeFileSync(path.join(etc, "hosts"), `127.0.0.1 localhost\n127.0.0.1 ${fqdn} ${podName}.${serviceName} ${podName}\n`);
  // Peers that do not exist fail to resolve at once, without a packet leaving loopback.
  writeFileSync(path.join(etc, "resolv.conf"), `nameserver 127.0.0.1\nsearch ${namespace}.svc.cluster.local svc.cluster.local cluster.local\n`);
  sh("mount", ["--bind", path.join(etc, "hosts"), "/etc/hosts"]);
  sh("mount", ["--bind", path.join(etc, "resolv.conf"), "/etc/resolv.conf"]);
  sh("mount", ["--bind", root, root]);
  sh("mount", ["-o", "remount,bind,ro", "/"]);
}

/// A read-only view of `source` at `view` (a volumeMount with readOnly: true).
export function readOnlyView(source, view) {
  mkdirSync(view, { recursive: true });
  sh("mount", ["--bind", source, view]);
  sh("mount", ["-o", "remount,bind,ro", view]);
}

/// Rewrites paths under a container's mountPaths to the local folders backing them.
export function pathMapper(mounts) {
  const entries = Object.entries(mounts).sort((a, b) => b[0].length - a[0].length);
  return (value) => {
    for (const [mountPath, local] of entries)
      if (value === mountPath || value.startsWith(mountPath + "/")) return local + value.slice(mountPath.length);
    // Inside args like --dir=/model-cache/x, and file:// URLs.
    for (const [mountPath, local] of entries) {
      const at = value.indexOf("=" + mountPath);
      if (at >= 0 && (value.length === at + 1 + mountPath.length || value[at + 1 + mountPath.length] === "/"))
        return value.slice(0, at + 1) + local + value.slice(at + 1 + mountPath.length);
    }
    return value;
  };
}

/// The command line and environment of a container, as the kubelet would start it.
export function containerProcess(objects, container, { executable, imageEnv, mounts, overrides = {} }) {
  const map = pathMapper(mounts);
  const env = { ...imageEnv, ...containerEnv(objects, container), ...overrides };
  for (const k of Object.keys(env)) env[k] = map(String(env[k]));
  const args = expandedArgs(objects, container).map(map);
  return { command: executable, args, env };
}

/// A started process with its output kept.
export class running {
  constructor(name, { command, args, env }) {
    this.name = name;
    this.output = "";
    this.child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    this.child.stdout.on("data", (d) => (this.output += d));
    this.child.stderr.on("data", (d) => (this.output += d));
    this.exited = new Promise((resolve) => this.child.on("exit", (code, signal) => resolve({ code, signal })));
  }
  signal(sig) {
    this.child.kill(sig);
  }
}

export async function run(name, spec, timeoutMs) {
  const p = new running(name, spec);
  const timer = setTimeout(() => p.signal("SIGKILL"), timeoutMs);
  const result = await p.exited;
  clearTimeout(timer);
  return { ...result, output: p.output };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/// One HTTP request on a new connection (as the kubelet's probes and a fresh client make
/// them; a pooled keep-alive connection may be one the server closed while draining).
export function request(port, method, urlPath, { headers = {}, body, timeoutMs = 10000 } = {}) {
  return new Promise((resolve) => {
    const req = http.request(
      { host: "127.0.0.1", port, method, path: urlPath, headers, agent: false, timeout: timeoutMs },
      (res) => {
        let text = "";
        res.on("data", (d) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode, text }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (e) => resolve({ status: 0, text: "", error: String(e) }));
    req.end(body);
  });
}

/// One probe attempt as the kubelet makes it: HTTP GET, success for 200-399 within
/// timeoutSeconds.
export async function probeOnce(probe, port) {
  const r = await request(port, "GET", probe.httpGet.path, { timeoutMs: (probe.timeoutSeconds ?? 1) * 1000 });
  return { ok: r.status >= 200 && r.status < 400, status: r.status, error: r.error };
}

/// Polls a probe until it succeeds, within the budget the manifest declares
/// (initialDelaySeconds + periodSeconds * failureThreshold); returns the seconds it took.
export async function waitForProbe(probe, port, process) {
  const budgetMs =
    ((probe.initialDelaySeconds ?? 0) + (probe.periodSeconds ?? 10) * (probe.failureThreshold ?? 3)) * 1000;
  const start = Date.now();
  while (Date.now() - start < budgetMs) {
    if ((await probeOnce(probe, port)).ok) return (Date.now() - start) / 1000;
    if (process.child.exitCode !== null) throw new Error(`${process.name} exited while probed:\n${process.output}`);
    await sleep(100);
  }
  throw new Error(`${probe.httpGet.path} did not succeed within ${budgetMs / 1000} s:\n${process.output}`);
}
