// Every overlay renders with `kubectl kustomize`, and every object it yields validates
// against the Kubernetes API schema of its kind (prometheus-operator and KEDA included).

import assert from "node:assert/strict";
import { test } from "node:test";

import { overlays, render, renderDir, validate, manifestsDir } from "./lib.mjs";

const expectedKinds = [
  "ConfigMap",
  "Ingress",
  "Namespace",
  "NetworkPolicy",
  "PodDisruptionBudget",
  "Secret",
  "Service",
  "ServiceAccount",
  "ServiceMonitor",
  "StatefulSet",
];

for (const overlay of overlays) {
  test(`overlay ${overlay} renders and every object validates`, () => {
    const objects = render(overlay);
    assert.ok(objects.length >= 12, `only ${objects.length} objects`);
    for (const obj of objects) validate(obj);
    const kinds = new Set(objects.map((o) => o.kind));
    for (const kind of expectedKinds) assert.ok(kinds.has(kind), `${overlay} has no ${kind}`);
    // Exactly one autoscaler: the HPA, or KEDA's ScaledObject (which makes its own HPA).
    const scalers = objects.filter((o) => o.kind === "HorizontalPodAutoscaler" || o.kind === "ScaledObject");
    assert.equal(scalers.length, 1, `${overlay}: ${scalers.map((o) => o.kind)}`);
    assert.equal(scalers[0].kind, overlay === "gpu-keda" ? "ScaledObject" : "HorizontalPodAutoscaler");
    // Everything lands in one namespace.
    for (const obj of objects.filter((o) => o.kind !== "Namespace"))
      assert.equal(obj.metadata.namespace, "actorserve", `${obj.kind}/${obj.metadata.name}`);
  });
}

test("the base renders on its own", () => {
  for (const obj of renderDir(`${manifestsDir}/base`)) validate(obj);
});

test("the validator rejects what the API server would", () => {
  const [sts] = render("gpu").filter((o) => o.kind === "StatefulSet");
  const broken = structuredClone(sts);
  broken.spec.replicas = "two";
  assert.throws(() => validate(broken), /replicas must be integer/);
  const noSelector = structuredClone(sts);
  delete noSelector.spec.selector;
  assert.throws(() => validate(noSelector), /selector/);
  const badProbe = structuredClone(sts);
  badProbe.spec.template.spec.containers[0].readinessProbe.periodSeconds = "often";
  assert.throws(() => validate(badProbe), /periodSeconds/);
  assert.throws(() => validate({ apiVersion: "example.com/v1", kind: "Thing", metadata: { name: "x" } }), /no schema/);
  const so = { apiVersion: "keda.sh/v1alpha1", kind: "ScaledObject", metadata: { name: "x" }, spec: { scaleTargetRef: { name: "x" }, triggers: "prometheus" } };
  assert.throws(() => validate(so), /triggers must be array/);
});
