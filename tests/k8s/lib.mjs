// Shared helpers of the manifest tests: render an overlay with `kubectl kustomize`, parse
// the YAML stream, validate objects against the Kubernetes API schemas, and read the serving
// flags a container would really get (ConfigMap values substituted into $(VAR) args).

import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const sourceDir = path.resolve(here, "../..");
export const manifestsDir = path.join(sourceDir, "manifests");
export const overlays = ["gpu", "tensor-parallel", "cpu-demo", "gpu-keda", "gpu-tls"];

const require = createRequire(import.meta.url);
function need(pkg) {
  try {
    return require(pkg);
  } catch (e) {
    throw new Error(
      `tests/k8s: the npm package '${pkg}' is missing (${e.code}); run scripts/fetch-test-assets.sh ` +
        "(it runs scripts/assets.d/k8s-node.sh: npm ci in tests/k8s)",
    );
  }
}
export const YAML = need("yaml");

// kubectl is on the developers' and CI's machines; say so plainly where it is not.
export function kubectl() {
  const candidates = [process.env.KUBECTL, "/usr/bin/kubectl", "/usr/local/bin/kubectl"].filter(Boolean);
  for (const c of candidates) if (existsSync(c)) return c;
  try {
    return execFileSync("sh", ["-c", "command -v kubectl"], { encoding: "utf8" }).trim();
  } catch {
    throw new Error(
      "tests/k8s: kubectl was not found (looked at $KUBECTL, /usr/bin, /usr/local/bin and PATH); " +
        "the manifest tests render with `kubectl kustomize`: install kubectl (>= 1.27)",
    );
  }
}

export function renderDir(dir) {
  const text = execFileSync(kubectl(), ["kustomize", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  return YAML.parseAllDocuments(text).map((doc) => {
    if (doc.errors.length) throw new Error(`${dir}: YAML error: ${doc.errors[0].message}`);
    return doc.toJS();
  });
}

export function render(overlay) {
  return renderDir(path.join(manifestsDir, "overlays", overlay));
}

// apiVersion -> the module with its models.
const modelModules = {
  v1: "kubernetes-models/v1",
  "apps/v1": "kubernetes-models/apps/v1",
  "autoscaling/v2": "kubernetes-models/autoscaling/v2",
  "policy/v1": "kubernetes-models/policy/v1",
  "networking.k8s.io/v1": "kubernetes-models/networking.k8s.io/v1",
  "monitoring.coreos.com/v1": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1",
  "keda.sh/v1alpha1": "@kubernetes-models/keda/keda.sh/v1alpha1",
};

/// Throws with the object's kind/name and the schema error when invalid or of an unknown type.
export function validate(obj) {
  const where = `${obj.kind}/${obj.metadata?.name}`;
  const module = modelModules[obj.apiVersion];
  if (!module) throw new Error(`${where}: no schema for apiVersion ${obj.apiVersion}`);
  const Model = need(module)[obj.kind];
  if (!Model) throw new Error(`${where}: no schema for kind ${obj.kind} in ${obj.apiVersion}`);
  try {
    new Model(obj).validate();
  } catch (e) {
    throw new Error(`${where}: ${e.message}`);
  }
}

export function find(objects, kind, name) {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? " " + name : ""}, found ${found.length}`);
  return found[0];
}

export function statefulSet(objects) {
  return find(objects, "StatefulSet", "actorserve");
}

/// The environment a container gets: its env values, envFrom ConfigMaps, and Secret refs
/// resolved from the rendered Secrets (stringData).
export function containerEnv(objects, container) {
  const env = {};
  for (const from of container.envFrom ?? []) {
    if (from.configMapRef) Object.assign(env, find(objects, "ConfigMap", from.configMapRef.name).data);
  }
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.secretKeyRef) {
      const ref = e.valueFrom.secretKeyRef;
      const secret = objects.find((o) => o.kind === "Secret" && o.metadata.name === ref.name);
      if (!secret && !ref.optional) throw new Error(`secret ${ref.name} is missing`);
      env[e.name] = secret?.stringData?.[ref.key] ?? "";
    } else if (e.valueFrom?.configMapKeyRef) {
      const ref = e.valueFrom.configMapKeyRef;
      env[e.name] = find(objects, "ConfigMap", ref.name).data[ref.key];
    }
  }
  return env;
}

/// Kubernetes' $(VAR) expansion of command and args ($$ escapes, unknown names stay).
export function expand(value, env) {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name) =>
    m === "$$" ? "$" : name in env ? env[name] : m,
  );
}

export function expandedArgs(objects, container) {
  const env = containerEnv(objects, container);
  return (container.args ?? []).map((a) => expand(a, env));
}

/// "--flag=value" / "--flag" -> [flag, value|undefined]
export function flagOf(arg) {
  const m = /^(--[a-z0-9-]+)(?:=(.*))?$/.exec(arg);
  return m ? [m[1], m[2]] : [undefined, undefined];
}

export function flagValue(args, flag) {
  for (const a of args) {
    const [f, v] = flagOf(a);
    if (f === flag) return v;
  }
  return undefined;
}

export function executable() {
  const exe = path.resolve(process.env.ACTORSERVE_EXECUTABLE ?? path.join(sourceDir, "build/actorserve"));
  if (!existsSync(exe)) throw new Error(`tests/k8s: actorserve executable not found at ${exe} (set ACTORSERVE_EXECUTABLE)`);
  return exe;
}
