// Policies every rendered overlay must meet: probes on ports and paths the server serves,
// a grace period that covers preStop plus the drain, resources on every container, a locked
// down security context, the model cache on a PVC template, and objects that point at each
// other (Services, Ingress, HPA/KEDA, PDB, NetworkPolicy, ServiceMonitor) consistently.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";

import {
  YAML,
  containerEnv,
  expandedArgs,
  find,
  flagValue,
  manifestsDir,
  overlays,
  render,
  sourceDir,
  statefulSet,
} from "./lib.mjs";

// Routes the server registers (gateway/http_server.cpp: server.Get("/path", ...)).
function servedPaths() {
  const source = readFileSync(path.join(sourceDir, "gateway/http_server.cpp"), "utf8");
  return new Set([...source.matchAll(/server\.(?:Get|Post)\("([^"]+)"/g)].map((m) => m[1]));
}

// Metric names the server exports (gateway/metrics.cpp).
function exportedMetrics() {
  const source = readFileSync(path.join(sourceDir, "gateway/metrics.cpp"), "utf8");
  return new Set([...source.matchAll(/"(actorserve:[a-z_]+)"/g)].map((m) => m[1]));
}

function matches(selector, labels) {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

function server(sts) {
  return sts.spec.template.spec.containers.find((c) => c.name === "server");
}

function downloadInit(sts) {
  return (sts.spec.template.spec.initContainers ?? []).find((c) => c.name === "download");
}

for (const overlay of overlays) {
  const objects = render(overlay);
  const sts = statefulSet(objects);
  const pod = sts.spec.template;
  const podLabels = pod.metadata.labels;
  const srv = server(sts);
  const init = downloadInit(sts);
  const srvArgs = expandedArgs(objects, srv);
  const initArgs = expandedArgs(objects, init);

  test(`${overlay}: every $(VAR) in the args is defined`, () => {
    for (const a of [...srvArgs, ...initArgs]) assert.doesNotMatch(a, /\$\(/, `unresolved: ${a}`);
    assert.equal(srvArgs[0], "serve");
    assert.equal(initArgs[0], "download");
  });

  test(`${overlay}: the model cache is a PVC template filled by the init container and read by the server`, () => {
    const pvc = sts.spec.volumeClaimTemplates.find((t) => t.metadata.name === "model-cache");
    assert.ok(pvc, "no model-cache volumeClaimTemplate");
    assert.match(pvc.spec.resources.requests.storage, /^\d+(Gi|Ti)$/);
    assert.ok(pvc.spec.accessModes.length > 0);
    const mount = (c) => c.volumeMounts.find((m) => m.name === "model-cache");
    const dir = flagValue(initArgs, "--dir");
    const model = flagValue(srvArgs, "--model");
    assert.equal(model, dir, "serve --model must be download --dir");
    assert.ok(dir.startsWith(mount(init).mountPath + "/"), `${dir} is not on the init container's cache mount`);
    assert.ok(model.startsWith(mount(srv).mountPath + "/"), `${model} is not on the server's cache mount`);
    assert.ok(!mount(init).readOnly, "the init container writes the cache");
    assert.equal(mount(srv).readOnly, true, "the server only reads the cache");
    assert.ok(flagValue(initArgs, "--repo"), "download needs --repo");
    const env = containerEnv(objects, init);
    assert.ok(env.HF_ENDPOINT, "HF_ENDPOINT is set for the init container");
    assert.ok(init.env.some((e) => e.name === "HF_TOKEN" && e.valueFrom?.secretKeyRef), "HF_TOKEN from a Secret");
  });

  test(`${overlay}: probes point at the server's port and at paths it serves`, () => {
    const paths = servedPaths();
    const port = Number(flagValue(srvArgs, "--port"));
    const http = srv.ports.find((p) => p.name === "http");
    assert.equal(http.containerPort, port, "containerPort http == serve --port");
    for (const kind of ["startupProbe", "readinessProbe", "livenessProbe"]) {
      const probe = srv[kind];
      assert.ok(probe?.httpGet, `${kind} is an httpGet probe`);
      assert.ok(probe.httpGet.port === "http" || probe.httpGet.port === port, `${kind} port`);
      assert.ok(paths.has(probe.httpGet.path), `${kind} path ${probe.httpGet.path} is not served`);
    }
    assert.equal(srv.readinessProbe.httpGet.path, "/ready");
    assert.equal(srv.livenessProbe.httpGet.path, "/health");
    // The startup budget covers a model load before liveness may restart the pod.
    const budget = srv.startupProbe.periodSeconds * srv.startupProbe.failureThreshold;
    assert.ok(budget >= 300, `startup budget ${budget} s`);
  });

  test(`${overlay}: grace period >= preStop + drain timeout`, () => {
    const preStop = srv.lifecycle.preStop.exec.command;
    assert.equal(preStop[0], "sleep");
    const preStopSeconds = Number(preStop[1]);
    const drain = Number(flagValue(srvArgs, "--shutdown-timeout"));
    assert.ok(drain > 0 && preStopSeconds > 0);
    const grace = pod.spec.terminationGracePeriodSeconds;
    assert.ok(grace >= preStopSeconds + drain, `grace ${grace} < preStop ${preStopSeconds} + drain ${drain}`);
    // ...but not so long that a stuck pod blocks a rollout for minutes.
    assert.ok(grace <= preStopSeconds + drain + 30, `grace ${grace} has more than 30 s of slack`);
  });

  test(`${overlay}: every container has resources; GPUs match the tensor-parallel size`, () => {
    for (const c of [...pod.spec.containers, ...(pod.spec.initContainers ?? [])]) {
      assert.ok(c.resources?.requests?.cpu, `${c.name}: cpu request`);
      assert.ok(c.resources?.requests?.memory, `${c.name}: memory request`);
      assert.ok(c.resources?.limits?.memory, `${c.name}: memory limit`);
    }
    const gpus = srv.resources.limits["nvidia.com/gpu"];
    const device = flagValue(srvArgs, "--device");
    if (overlay === "cpu-demo") {
      assert.equal(gpus, undefined);
      assert.equal(srv.resources.requests["nvidia.com/gpu"], undefined);
      assert.equal(device, "cpu");
    } else {
      assert.equal(device, "cuda");
      assert.equal(Number(gpus), Number(flagValue(srvArgs, "--tensor-parallel-size")));
      assert.equal(srv.resources.requests["nvidia.com/gpu"], gpus, "GPU requests == limits");
      assert.ok(pod.spec.tolerations.some((t) => t.key === "nvidia.com/gpu"));
    }
    if (overlay === "tensor-parallel") assert.ok(Number(flagValue(srvArgs, "--tensor-parallel-size")) > 1);
  });

  test(`${overlay}: non-root, read-only root filesystem, no capabilities`, () => {
    const psc = pod.spec.securityContext;
    assert.equal(psc.runAsNonRoot, true);
    assert.ok(psc.runAsUser > 0);
    assert.equal(psc.seccompProfile.type, "RuntimeDefault");
    assert.equal(pod.spec.automountServiceAccountToken, false);
    for (const key of ["hostNetwork", "hostPID", "hostIPC"]) assert.ok(!pod.spec[key], key);
    for (const v of pod.spec.volumes) assert.ok(!v.hostPath, `hostPath volume ${v.name}`);
    for (const c of [...pod.spec.containers, ...(pod.spec.initContainers ?? [])]) {
      const sc = c.securityContext;
      assert.equal(sc.allowPrivilegeEscalation, false, c.name);
      assert.equal(sc.readOnlyRootFilesystem, true, c.name);
      assert.deepEqual(sc.capabilities.drop, ["ALL"], c.name);
      assert.ok(!sc.capabilities.add, c.name);
      assert.ok(!sc.privileged, c.name);
      // A read-only root needs a writable /tmp.
      const tmp = c.volumeMounts.find((m) => m.mountPath === "/tmp");
      assert.ok(tmp, `${c.name}: /tmp`);
    }
    const ns = find(objects, "Namespace");
    assert.equal(ns.metadata.labels["pod-security.kubernetes.io/enforce"], "restricted");
  });

  test(`${overlay}: /dev/shm is memory-backed`, () => {
    const mount = srv.volumeMounts.find((m) => m.mountPath === "/dev/shm");
    assert.ok(mount);
    const volume = pod.spec.volumes.find((v) => v.name === mount.name);
    assert.equal(volume.emptyDir.medium, "Memory");
    assert.ok(volume.emptyDir.sizeLimit);
  });

  test(`${overlay}: Services, Ingress, PDB, NetworkPolicy and ServiceMonitor point at the pods`, () => {
    const headless = find(objects, "Service", sts.spec.serviceName);
    assert.equal(headless.spec.clusterIP, "None");
    assert.equal(headless.spec.publishNotReadyAddresses, true);
    const client = find(objects, "Service", "actorserve");
    for (const svc of [headless, client]) {
      assert.ok(matches(svc.spec.selector, podLabels), `${svc.metadata.name} selects the pods`);
      for (const p of svc.spec.ports) assert.ok(srv.ports.some((cp) => cp.name === p.targetPort), p.targetPort);
    }
    const ingress = find(objects, "Ingress");
    assert.ok(ingress.spec.tls?.[0]?.secretName, "TLS");
    assert.deepEqual(ingress.spec.tls[0].hosts, ingress.spec.rules.map((r) => r.host));
    const a = ingress.metadata.annotations;
    assert.equal(a["nginx.ingress.kubernetes.io/proxy-buffering"], "off", "SSE must not be buffered");
    assert.ok(Number(a["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 600);
    for (const rule of ingress.spec.rules)
      for (const p of rule.http.paths) {
        assert.equal(p.backend.service.name, client.metadata.name);
        assert.ok(client.spec.ports.some((sp) => sp.name === p.backend.service.port.name));
      }
    const pdb = find(objects, "PodDisruptionBudget");
    assert.ok(matches(pdb.spec.selector.matchLabels, podLabels));
    assert.ok(pdb.spec.maxUnavailable >= 1 || pdb.spec.minAvailable !== undefined);
    const np = find(objects, "NetworkPolicy");
    assert.ok(matches(np.spec.podSelector.matchLabels, podLabels));
    assert.ok(np.spec.ingress.some((rule) => rule.ports?.some((p) => p.port === "http")));
    // Peers reach every port the headless Service publishes (the API and the cluster port).
    const fromPeers = np.spec.ingress.filter((rule) =>
      rule.from.some((f) => f.podSelector && !f.namespaceSelector && matches(f.podSelector.matchLabels, podLabels)));
    for (const p of headless.spec.ports)
      assert.ok(
        fromPeers.some((rule) => !rule.ports || rule.ports.some((rp) => rp.port === p.targetPort || rp.port === p.port)),
        `NetworkPolicy blocks peers on ${p.name}`,
      );
    const peersOut = np.spec.egress.filter((rule) => rule.to?.some((t) => t.podSelector && matches(t.podSelector.matchLabels, podLabels)));
    assert.ok(peersOut.some((rule) => !rule.ports), "peers are reachable on every port");
    assert.ok(np.spec.egress.some((rule) => rule.ports?.some((p) => p.port === 443)), "HTTPS out for downloads");
    const sm = find(objects, "ServiceMonitor");
    assert.ok(matches(sm.spec.selector.matchLabels, client.metadata.labels), "ServiceMonitor selects the client Service");
    assert.ok(servedPaths().has(sm.spec.endpoints[0].path));
    assert.ok(client.spec.ports.some((p) => p.name === sm.spec.endpoints[0].port));
  });

  test(`${overlay}: the autoscaler scales the StatefulSet on the server's waiting-requests metric`, () => {
    const adapter = YAML.parse(readFileSync(path.join(manifestsDir, "prometheus-adapter/values.yaml"), "utf8"));
    const rule = adapter.rules.custom[0];
    const series = /^([a-z_:]+)\{/.exec(rule.seriesQuery)[1];
    assert.ok(exportedMetrics().has(series), `${series} is not exported by gateway/metrics.cpp`);
    const scaler = objects.find((o) => o.kind === "HorizontalPodAutoscaler" || o.kind === "ScaledObject");
    assert.equal(scaler.spec.scaleTargetRef.kind, "StatefulSet");
    assert.equal(scaler.spec.scaleTargetRef.name, sts.metadata.name);
    if (scaler.kind === "HorizontalPodAutoscaler") {
      const metric = scaler.spec.metrics[0];
      assert.equal(metric.type, "Pods");
      assert.equal(metric.pods.metric.name, rule.name.as, "HPA metric == the adapter rule's name");
      assert.ok(scaler.spec.maxReplicas > scaler.spec.minReplicas);
    } else {
      const trigger = scaler.spec.triggers[0];
      assert.equal(trigger.type, "prometheus");
      assert.ok(trigger.metadata.query.includes(series + "{"), trigger.metadata.query);
      assert.ok(trigger.metadata.query.includes(`namespace="${sts.metadata.namespace}"`));
    }
  });

  test(`${overlay}: one pinned image for all containers`, () => {
    const images = new Set([...pod.spec.containers, ...pod.spec.initContainers].map((c) => c.image));
    assert.equal(images.size, 1);
    const [image] = images;
    assert.match(image, /^[a-z0-9.-]+\/[a-z0-9/-]+:[0-9][\w.-]*$/, `image ${image} has a registry and a version tag`);
    assert.equal(image.endsWith("-cpu"), overlay === "cpu-demo", image);
  });
}
