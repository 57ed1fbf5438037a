// The cpu-demo overlay's StatefulSet, rendered with kubectl kustomize, run the way a kubelet
// would run pod actorserve-0, with processes instead of containers (run.sh makes the sandbox):
//   1. the init container downloads the model into the PVC folder from the fake Hub
//      (HF_ENDPOINT is the one override: the manifest's points at the image's bundled mirror);
//   2. the server starts with the manifest's arguments and environment; the startup,
//      readiness and liveness probes answer on the declared port and paths within their
//      declared budgets; a request is served (with the API key from the Secret);
//   3. deletion: preStop as declared, then SIGTERM while a stream is in flight: /ready turns
//      503, new requests are refused, the stream completes, the server exits 0 within
//      terminationGracePeriodSeconds;
//   4. a new pod on the same PVC, with the Hub gone: the init container finds the cache and
//      skips the download; the server serves again.

import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";

import { YAML, containerEnv, executable, expandedArgs, flagValue, manifestsDir, render, sourceDir, statefulSet } from "../k8s/lib.mjs";
import { containerProcess, enterPodSandbox, probeOnce, readOnlyView, request, run, running, sleep, waitForProbe } from "./pod.mjs";

const root = process.env.ACTORSERVE_POD_ROOT;
const fakeHub = process.env.ACTORSERVE_FAKE_HUB;

// ENV lines of the image (Dockerfile.cpu) that the containers inherit.
function imageEnv(home) {
  const env = { PATH: "/usr/local/bin:/usr/bin:/bin", HOME: home };
  const text = readFileSync(path.join(sourceDir, "Dockerfile.cpu"), "utf8");
  for (const m of text.matchAll(/^ENV\s+([A-Z_][A-Z0-9_]*)=(\S+)$/gm)) env[m[1]] = m[2];
  return env;
}

// Folders behind a pod's volumes: emptyDirs are new for each pod, the PVC is kept.
function podVolumes(sts, podName, podRoot) {
  const volumes = {};
  for (const v of sts.spec.template.spec.volumes) volumes[v.name] = path.join(podRoot, "volumes", v.name);
  for (const t of sts.spec.volumeClaimTemplates)
    volumes[t.metadata.name] = path.join(root, "pvc", `${t.metadata.name}-${podName}`);
  for (const dir of Object.values(volumes)) mkdirSync(dir, { recursive: true });
  return volumes;
}

function containerMounts(container, volumes, podRoot) {
  const mounts = {};
  for (const m of container.volumeMounts) {
    if (m.mountPath === "/dev/shm") continue; // the host's /dev/shm stands in for it
    let local = volumes[m.name];
    if (m.readOnly) {
      local = path.join(podRoot, "views", container.name, m.name);
      readOnlyView(volumes[m.name], local);
    }
    mounts[m.mountPath] = local;
  }
  return mounts;
}

async function completion(port, apiKey, body) {
  const headers = { "content-type": "application/json" };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;
  const r = await request(port, "POST", "/v1/completions", { headers, body: JSON.stringify(body), timeoutMs: 60000 });
  let json = null;
  try {
    json = JSON.parse(r.text);
  } catch {}
  return { status: r.status, json, error: r.error };
}

test("the cpu-demo StatefulSet's pod, run as processes", { timeout: 240_000 }, async (t) => {
  assert.ok(root, "ACTORSERVE_POD_ROOT is not set (run through run.sh)");
  assert.ok(fakeHub && existsSync(fakeHub), `the fake Hub program is missing: ${fakeHub}`);
  const objects = render("cpu-demo");
  const sts = statefulSet(objects);
  const podSpec = sts.spec.template.spec;
  const podName = `${sts.metadata.name}-0`;
  const init = podSpec.initContainers.find((c) => c.name === "download");
  const server = podSpec.containers.find((c) => c.name === "server");
  const serverArgs = expandedArgs(objects, server);
  const port = Number(flagValue(serverArgs, "--port"));
  const grace = podSpec.terminationGracePeriodSeconds;
  const preStop = server.lifecycle.preStop.exec.command;
  const env = containerEnv(objects, server);
  const apiKey = env.ACTORSERVE_API_KEY;
  const modelName = flagValue(serverArgs, "--served-model-name");
  const adapter = YAML.parse(readFileSync(path.join(manifestsDir, "prometheus-adapter/values.yaml"), "utf8"));
  const waitingSeries = /^([a-z_:]+)\{/.exec(adapter.rules.custom[0].seriesQuery)[1];

  enterPodSandbox({ root, podName, serviceName: sts.spec.serviceName, namespace: sts.metadata.namespace });
  const processes = [];
  const start = (name, spec) => {
    const p = new running(name, spec);
    processes.push(p);
    return p;
  };

  try {
    // The fake Hub serves the bundled demo model under the repo name the manifest asks for.
    const repo = containerEnv(objects, init).MODEL_REPO;
    const hubDir = path.join(root, "hub");
    mkdirSync(hubDir, { recursive: true });
    const hub = start("fake hub", {
      command: fakeHub,
      args: ["--repo", `${repo}=${path.join(sourceDir, "models/demo")}`, "--port-file", path.join(hubDir, "endpoint"),
             "--log", path.join(hubDir, "requests.log")],
      env: { PATH: process.env.PATH },
    });
    while (!existsSync(path.join(hubDir, "endpoint"))) await sleep(20);
    const endpoint = readFileSync(path.join(hubDir, "endpoint"), "utf8").trim();
    const hubLog = () => (existsSync(path.join(hubDir, "requests.log")) ? readFileSync(path.join(hubDir, "requests.log"), "utf8") : "");

    // ---- pod 1 ----
    const pod1 = path.join(root, "pod-1");
    const volumes1 = podVolumes(sts, podName, pod1);
    const home1 = path.join(pod1, "home");
    mkdirSync(home1, { recursive: true });
    const cacheDir = path.join(volumes1["model-cache"], "model");

    await t.test("the init container downloads the model into the PVC", async () => {
      const spec = containerProcess(objects, init, {
        executable: executable(), imageEnv: imageEnv(home1), mounts: containerMounts(init, volumes1, pod1),
        overrides: { HF_ENDPOINT: endpoint },
      });
      const r = await run("download", spec, 120_000);
      assert.equal(r.code, 0, r.output);
      for (const f of ["config.json", "model.safetensors", "tokenizer.json", ".actorserve/complete.json"])
        assert.ok(existsSync(path.join(cacheDir, f)), `${f} missing:\n${r.output}`);
      assert.match(hubLog(), new RegExp(`hub GET /api/models/${repo}/revision/main`));
      assert.match(hubLog(), /cdn GET \/blobs\/[0-9a-f]{64}/, "the weights came through the CDN redirect");
    });

    const spec1 = containerProcess(objects, server, {
      executable: executable(), imageEnv: imageEnv(home1), mounts: containerMounts(server, volumes1, pod1),
    });
    const server1 = start("server", spec1);

    await t.test("startup, readiness and liveness probes answer as declared", async () => {
      const startupS = await waitForProbe(server.startupProbe, port, server1);
      const readyS = await waitForProbe(server.readinessProbe, port, server1);
      assert.ok((await probeOnce(server.livenessProbe, port)).ok);
      t.diagnostic(`startup probe ok after ${startupS.toFixed(2)} s, ready after ${readyS.toFixed(2)} s more`);
    });

    await t.test("a request is served, with the API key from the Secret", async () => {
      assert.ok(apiKey, "the Secret gives an API key");
      const denied = await completion(port, null, { model: modelName, prompt: "Hello", max_tokens: 4 });
      assert.equal(denied.status, 401);
      const r = await completion(port, apiKey, { model: modelName, prompt: "Hello", max_tokens: 16, ignore_eos: true });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.json.usage.completion_tokens, 16);
      assert.ok(r.json.choices[0].text.length > 0);
      const metrics = (await request(port, "GET", "/metrics")).text;
      assert.match(metrics, new RegExp(`^${waitingSeries}\\{`, "m"), "the metric the autoscaler uses is exported");
      // The server never wrote to the read-only model cache (writes there would have failed).
      assert.doesNotMatch(server1.output, /Read-only file system/);
    });

    await t.test("deletion: preStop, then SIGTERM drains the in-flight stream within the grace period", async () => {
      const deletedAt = Date.now();
      const hook = await run("preStop", { command: preStop[0], args: preStop.slice(1), env: { PATH: "/usr/bin:/bin" } }, grace * 1000);
      assert.equal(hook.code, 0, hook.output);
      // A request that is still streaming when SIGTERM arrives.
      const res = await fetch(`http://127.0.0.1:${port}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
        body: JSON.stringify({ model: modelName, prompt: "Once upon a time", max_tokens: 200, ignore_eos: true, stream: true }),
      });
      assert.equal(res.status, 200);
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let text = decoder.decode((await reader.read()).value);
      const eventsBeforeSigterm = text.split("\n\n").filter((e) => e.startsWith("data: ")).length;
      server1.signal("SIGTERM");
      await sleep(300);
      const readyWhileDraining = await probeOnce(server.readinessProbe, port);
      assert.equal(readyWhileDraining.status, 503, `/ready while draining: ${JSON.stringify(readyWhileDraining)}\n${server1.output}`);
      assert.ok((await probeOnce(server.livenessProbe, port)).ok, "/health stays up while draining");
      const refused = await completion(port, apiKey, { model: modelName, prompt: "late", max_tokens: 4 });
      assert.equal(refused.status, 503, "no new requests while draining");
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value);
      }
      const events = text.split("\n\n").filter((e) => e.startsWith("data: ")).map((e) => e.slice(6));
      assert.equal(events.at(-1), "[DONE]", "the stream ended normally");
      const reasons = events.slice(0, -1).map((e) => JSON.parse(e).choices?.[0]?.finish_reason).filter(Boolean);
      assert.deepEqual(reasons, ["length"], "the stream ran to max_tokens, not aborted");
      // Most of it was generated after SIGTERM: the drain really had a request in flight.
      assert.ok(events.length - eventsBeforeSigterm >= 50, `${eventsBeforeSigterm} of ${events.length} events before SIGTERM`);
      const exit = await server1.exited;
      const seconds = (Date.now() - deletedAt) / 1000;
      assert.equal(exit.code, 0, server1.output);
      assert.ok(seconds <= grace, `stopped after ${seconds.toFixed(1)} s > terminationGracePeriodSeconds ${grace}`);
      t.diagnostic(`stopped ${seconds.toFixed(1)} s after deletion (grace ${grace} s)`);
    });

    // ---- pod 2: same PVC, new emptyDirs, and no Hub at all ----
    hub.signal("SIGTERM");
    await hub.exited;
    const pod2 = path.join(root, "pod-2");
    const volumes2 = podVolumes(sts, podName, pod2);
    const home2 = path.join(pod2, "home");
    mkdirSync(home2, { recursive: true });

    await t.test("a restarted pod finds the cache and skips the download", async () => {
      const before = hubLog();
      const spec = containerProcess(objects, init, {
        executable: executable(), imageEnv: imageEnv(home2), mounts: containerMounts(init, volumes2, pod2),
        overrides: { HF_ENDPOINT: endpoint },
      });
      const began = Date.now();
      const r = await run("download", spec, 60_000);
      assert.equal(r.code, 0, r.output);
      assert.match(r.output, /already complete/);
      assert.equal(hubLog(), before, "no request reached the Hub");
      assert.ok(Date.now() - began < 5000);
    });

    await t.test("the restarted server serves again", async () => {
      const server2 = start("server 2", containerProcess(objects, server, {
        executable: executable(), imageEnv: imageEnv(home2), mounts: containerMounts(server, volumes2, pod2),
      }));
      await waitForProbe(server.startupProbe, port, server2);
      await waitForProbe(server.readinessProbe, port, server2);
      const r = await completion(port, apiKey, { model: modelName, prompt: "Hello", max_tokens: 8 });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      server2.signal("SIGTERM");
      assert.equal((await server2.exited).code, 0, server2.output);
    });
  } finally {
    for (const p of processes) if (p.child.exitCode === null && p.child.signalCode === null) p.signal("SIGKILL");
  }
});
