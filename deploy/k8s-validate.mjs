#!/usr/bin/env node
// Offline validation of the Kubernetes manifests (no API server, no kubeconform here).
//
//   node deploy/k8s-validate.mjs [--k8s DIR] [--deploy DIR] [--quiet]
//
// 1. Every YAML document under the k8s folder parses and validates against the
//    Kubernetes 1.27 schemas of `kubernetes-models` (KEDA and prometheus-operator
//    models for their CRDs); unknown kinds and unknown container fields are errors
//    (the schemas accept unknown fields, and a typo like `readinesProbe` would
//    otherwise silently drop a probe).
// 2. Every kustomization whose folder no other kustomization includes (the overlays)
//    is built with a small subset of kustomize (resources, namespace, images,
//    replicas, config/secret generators with hash suffixes, strategic-merge and
//    JSON 6902 patches); any other kustomization field is refused rather than
//    misread. The built objects are validated again and cross-checked: Services,
//    PDBs, NetworkPolicies and ServiceMonitors select real pods / Services; probes and
//    policies use declared ports; ConfigMap / Secret / ServiceAccount / Role
//    references resolve (Secrets made outside the tree are listed in the overlay's
//    `paimon.fund/external-secrets` annotation); the design rules of ARCHITECTURE §7
//    hold (hardened pods, probes on /health/*, grace > 11 s, KEDA on every priority
//    stream of the service's own group, only the api reaches internal ports).
// 3. With the deploy folder: docker-compose and Prometheus files name every daemon
//    and agree with the manifests' ports; the alert rules exist in both forms.
//
// Exit status 0 when everything holds, 1 with one "error:" line per problem, 2 usage.
import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";
import YAML from "yaml";
import * as km from "kubernetes-models";
import * as keda from "@kubernetes-models/keda";
import * as promop from "@kubernetes-models/prometheus-operator";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..");

// The daemons, their internal ports (the defaults built into svc_new) and what each
// consumes from the bus (ARCHITECTURE §3.1): KEDA must watch exactly these topics.
const DAEMONS = {
  api: { port: 8080, topics: null },
  listener: { port: 8081, topics: null },
  approval: { port: 8082, topics: ["chain.events", "approval.requests"] },
  rebalance: { port: 8083, topics: ["chain.events", "approval.decisions"] },
  risk: { port: 8084, topics: ["chain.events", "approval.decisions"] },
  notifier: { port: 8085, topics: ["alerts"] },
};
const PRIORITIES = ["critical", "high", "normal"];
const EXTERNAL_SECRETS = "paimon.fund/external-secrets";
const CONTAINER_KEYS = new Set(
  ("name image command args workingDir ports envFrom env resources resizePolicy restartPolicy " +
    "volumeMounts volumeDevices livenessProbe readinessProbe startupProbe lifecycle " +
    "terminationMessagePath terminationMessagePolicy imagePullPolicy securityContext stdin " +
    "stdinOnce tty").split(" "),
);
const KUSTOMIZATION_KEYS = new Set(
  ("apiVersion kind metadata namespace resources patches images replicas configMapGenerator " +
    "secretGenerator").split(" "),
);
const CLUSTER_SCOPED = new Set(["Namespace", "ClusterRole", "ClusterRoleBinding"]);

// ---------------------------------------------------------------- arguments
const args = { k8s: path.join(repo, "k8s"), deploy: path.join(repo, "deploy"), quiet: false };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === "--k8s" || a === "--deploy") {
    if (i + 1 >= process.argv.length) usage(`missing value after ${a}`);
    args[a.slice(2)] = path.resolve(process.argv[++i]);
  } else if (a === "--no-deploy") args.deploy = null;
  else if (a === "--quiet") args.quiet = true;
  else if (a === "-h" || a === "--help") usage(null);
  else usage(`unknown argument ${a}`);
}
function usage(msg) {
  const text = "usage: k8s-validate.mjs [--k8s DIR] [--deploy DIR | --no-deploy] [--quiet]";
  if (msg) {
    console.error(`k8s-validate: ${msg}\n${text}`);
    process.exit(2);
  }
  console.log(text);
  process.exit(0);
}

const errors = [];
const err = (where, msg) => errors.push(`${where}: ${msg}`);
const rel = (p) => path.relative(process.cwd(), p) || ".";

// ---------------------------------------------------------------- models
// apiVersion/kind -> model class, from every class the packages export.
const MODELS = new Map();
function collect(ns) {
  for (const v of Object.values(ns)) {
    if (typeof v === "function" && v.apiVersion && v.kind) MODELS.set(`${v.apiVersion}/${v.kind}`, v);
    else if (v && typeof v === "object") collect(v);
  }
}
collect(km);
collect(keda);
collect(promop);

function validateModel(obj, where) {
  if (!obj || typeof obj !== "object" || Array.isArray(obj)) return err(where, "document is not a mapping");
  const Model = MODELS.get(`${obj.apiVersion}/${obj.kind}`);
  if (!Model) return err(where, `unknown apiVersion/kind ${obj.apiVersion}/${obj.kind}`);
  if (!obj.metadata || typeof obj.metadata.name !== "string")
    return err(where, `${obj.kind} without metadata.name`);
  try {
    new Model(obj).validate();
  } catch (e) {
    const list = Array.isArray(e.errors) && e.errors.length ? e.errors : [{ instancePath: "", message: e.message }];
    for (const x of list.slice(0, 5)) {
      const extra = x.params && x.params.missingProperty ? ` (${x.params.missingProperty})` : "";
      err(where, `${obj.kind}/${obj.metadata.name} schema: ${x.instancePath || "/"} ${x.message}${extra}`);
    }
  }
  for (const { c, at } of containersOf(obj)) {
    for (const k of Object.keys(c)) if (!CONTAINER_KEYS.has(k)) err(where, `${id(obj)} ${at}: unknown container field "${k}"`);
  }
}

const id = (o) => `${o.kind}/${o.metadata?.name}`;
const podSpec = (o) =>
  o.kind === "Deployment" || o.kind === "StatefulSet" || o.kind === "DaemonSet" || o.kind === "Job"
    ? o.spec?.template?.spec
    : o.kind === "Pod"
      ? o.spec
      : undefined;
function containersOf(o) {
  const ps = podSpec(o);
  if (!ps) return [];
  const out = [];
  for (const key of ["initContainers", "containers"])
    (ps[key] || []).forEach((c, i) => out.push({ c, at: `${key}[${i}] ${c?.name}` }));
  return out;
}

// ---------------------------------------------------------------- loading
function loadDocs(file) {
  let text;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    err(rel(file), `cannot read: ${e.message}`);
    return [];
  }
  const out = [];
  for (const d of YAML.parseAllDocuments(text, { merge: true })) {
    if (d.errors.length) {
      for (const e of d.errors) err(rel(file), `YAML: ${e.message.split("\n")[0]}`);
      continue;
    }
    const v = d.toJS();
    if (v !== null && v !== undefined) out.push(v);
  }
  return out;
}

function walk(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (/\.ya?ml$/.test(e.name)) out.push(p);
  }
  return out.sort();
}

// ---------------------------------------------------------------- mini kustomize
const isKustomization = (f) => /^kustomization\.ya?ml$/.test(path.basename(f));
const kfile = (dir) =>
  ["kustomization.yaml", "kustomization.yml"].map((n) => path.join(dir, n)).find((f) => fs.existsSync(f));

const clone = (v) => structuredClone(v);
const sameTarget = (o, t) =>
  (!t.kind || o.kind === t.kind) &&
  (!t.name || o.metadata.name === t.name) &&
  (!t.group || (o.apiVersion.includes("/") ? o.apiVersion.split("/")[0] : "") === t.group) &&
  (!t.version || o.apiVersion.split("/").pop() === t.version);

// Strategic merge, simplified: maps merge, lists of maps with a `name` merge by name,
// other lists are replaced. Enough for the patches this tree uses.
function smerge(base, patch) {
  if (patch === null) return undefined;
  if (Array.isArray(patch)) {
    if (!Array.isArray(base) || !patch.every((x) => x && typeof x === "object" && "name" in x)) return clone(patch);
    const out = base.map(clone);
    for (const p of patch) {
      const i = out.findIndex((x) => x && x.name === p.name);
      if (i < 0) out.push(clone(p));
      else out[i] = smerge(out[i], p);
    }
    return out;
  }
  if (patch && typeof patch === "object") {
    const out = base && typeof base === "object" && !Array.isArray(base) ? clone(base) : {};
    for (const [k, v] of Object.entries(patch)) {
      const m = smerge(out[k], v);
      if (m === undefined) delete out[k];
      else out[k] = m;
    }
    return out;
  }
  return patch;
}

function jsonPatch(obj, ops, where) {
  for (const op of ops) {
    const parts = String(op.path || "")
      .split("/")
      .slice(1)
      .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
    if (!parts.length || !["add", "replace", "remove"].includes(op.op)) {
      err(where, `unsupported JSON patch operation ${JSON.stringify(op)}`);
      continue;
    }
    let cur = obj;
    for (const p of parts.slice(0, -1)) {
      cur = Array.isArray(cur) ? cur[Number(p)] : cur?.[p];
      if (cur === undefined) break;
    }
    const last = parts[parts.length - 1];
    if (cur === undefined || (op.op !== "add" && !(Array.isArray(cur) ? Number(last) < cur.length : last in cur))) {
      err(where, `JSON patch path ${op.path} does not exist in ${id(obj)}`);
      continue;
    }
    if (op.op === "remove") Array.isArray(cur) ? cur.splice(Number(last), 1) : delete cur[last];
    else if (Array.isArray(cur) && op.op === "add") cur.splice(last === "-" ? cur.length : Number(last), 0, clone(op.value));
    else cur[last] = clone(op.value);
  }
}

function literalsToData(list, where) {
  const data = {};
  for (const l of list || []) {
    const i = String(l).indexOf("=");
    if (i <= 0) err(where, `generator literal "${l}" is not KEY=VALUE`);
    else data[String(l).slice(0, i)] = String(l).slice(i + 1);
  }
  return data;
}

// Builds one kustomization folder; returns { objects, generated, externals, files }.
// generated: Map base name -> {kind, obj, hash:boolean} (names resolved by the root).
function build(dir, stack = []) {
  const kf = kfile(dir);
  const where = rel(kf || dir);
  const res = { objects: [], generated: new Map(), externals: new Set(), files: new Set() };
  if (!kf) {
    err(rel(dir), "no kustomization.yaml in a folder listed as a resource");
    return res;
  }
  if (stack.includes(dir)) {
    err(where, "kustomization includes itself");
    return res;
  }
  res.files.add(kf);
  const [k] = loadDocs(kf);
  if (!k || k.kind !== "Kustomization") {
    err(where, "not a Kustomization document");
    return res;
  }
  for (const key of Object.keys(k)) if (!KUSTOMIZATION_KEYS.has(key)) err(where, `field "${key}" is not supported by this validator`);
  const ext = k.metadata?.annotations?.[EXTERNAL_SECRETS];
  if (ext) for (const s of String(ext).split(",")) if (s.trim()) res.externals.add(s.trim());

  for (const r of k.resources || []) {
    const p = path.resolve(dir, r);
    if (!fs.existsSync(p)) {
      err(where, `resource ${r} does not exist`);
      continue;
    }
    if (fs.statSync(p).isDirectory()) {
      const sub = build(p, [...stack, dir]);
      res.objects.push(...sub.objects);
      for (const [n, g] of sub.generated) res.generated.set(n, g);
      sub.externals.forEach((x) => res.externals.add(x));
      sub.files.forEach((x) => res.files.add(x));
    } else {
      res.files.add(p);
      for (const d of loadDocs(p)) {
        if (d && typeof d === "object") res.objects.push(clone(d));
      }
    }
  }
  for (const [key, kind] of [
    ["configMapGenerator", "ConfigMap"],
    ["secretGenerator", "Secret"],
  ]) {
    for (const g of k[key] || []) {
      if (!g.name) {
        err(where, `${key} entry without name`);
        continue;
      }
      for (const f of Object.keys(g))
        if (!["name", "literals", "behavior", "options", "type"].includes(f)) err(where, `${key} ${g.name}: field "${f}" is not supported`);
      const data = literalsToData(g.literals, `${where} ${key} ${g.name}`);
      const prev = res.generated.get(g.name);
      const behavior = g.behavior || "create";
      if (behavior === "create" && prev) err(where, `${kind} ${g.name} generated twice (use behavior: merge)`);
      if (behavior !== "create" && (!prev || prev.kind !== kind)) {
        err(where, `${kind} ${g.name}: behavior ${behavior} but no base generator of that name`);
        continue;
      }
      const obj =
        behavior === "merge"
          ? prev.obj
          : { apiVersion: "v1", kind, metadata: { name: g.name }, ...(g.type ? { type: g.type } : {}) };
      const field = kind === "Secret" ? "stringData" : "data";
      obj[field] = behavior === "merge" ? { ...obj[field], ...data } : data;
      res.generated.set(g.name, { kind, obj, hash: !(g.options && g.options.disableNameSuffixHash) });
    }
  }
  const all = () => [...res.objects, ...[...res.generated.values()].map((g) => g.obj)];
  for (const p of k.patches || []) {
    let text = p.patch;
    const pw = `${where} patch ${p.path || "(inline)"}`;
    if (p.path) {
      const f = path.resolve(dir, p.path);
      if (!fs.existsSync(f)) {
        err(where, `patch ${p.path} does not exist`);
        continue;
      }
      res.files.add(f);
      text = fs.readFileSync(f, "utf8");
    }
    let body;
    try {
      body = YAML.parse(text);
    } catch (e) {
      err(pw, `YAML: ${e.message.split("\n")[0]}`);
      continue;
    }
    if (Array.isArray(body)) {
      if (!p.target) {
        err(pw, "a JSON 6902 patch needs a target");
        continue;
      }
      const hits = all().filter((o) => sameTarget(o, p.target));
      if (!hits.length) err(pw, `target ${JSON.stringify(p.target)} matches nothing`);
      for (const o of hits) jsonPatch(o, body, pw);
    } else if (body && typeof body === "object") {
      const t = p.target || { kind: body.kind, name: body.metadata?.name };
      const hits = all().filter((o) => sameTarget(o, t));
      if (!hits.length) err(pw, `target ${t.kind}/${t.name} matches nothing`);
      for (const o of hits) {
        const m = smerge(o, { ...body, metadata: { ...body.metadata, name: o.metadata.name } });
        for (const key of Object.keys(o)) delete o[key];
        Object.assign(o, m);
      }
    } else err(pw, "empty patch");
  }
  for (const im of k.images || []) {
    let used = false;
    for (const o of all())
      for (const { c } of containersOf(o)) {
        const m = /^(.*?)(?::([^:/@]+))?(?:@(.+))?$/.exec(c.image || "");
        if (!m || m[1] !== im.name) continue;
        used = true;
        const name = im.newName || m[1];
        c.image = im.digest ? `${name}@${im.digest}` : `${name}:${im.newTag || m[2] || "latest"}`;
      }
    if (!used) err(where, `images: ${im.name} is used by no container`);
  }
  for (const r of k.replicas || []) {
    const hits = all().filter((o) => o.metadata.name === r.name && o.spec && "replicas" in o.spec);
    if (!hits.length) err(where, `replicas: ${r.name} matches no workload`);
    for (const o of hits) o.spec.replicas = r.count;
  }
  if (k.namespace)
    for (const o of all()) if (!CLUSTER_SCOPED.has(o.kind)) (o.metadata ||= {}).namespace = k.namespace;
  return res;
}

// Root build: generated names get their hash suffix and every reference follows.
function finish(res) {
  const rename = new Map();
  for (const [n, g] of res.generated) {
    const payload = JSON.stringify({ kind: g.kind, data: g.obj.data || g.obj.stringData });
    const name = g.hash ? `${n}-${crypto.createHash("sha256").update(payload).digest("hex").slice(0, 10)}` : n;
    rename.set(`${g.kind}/${n}`, name);
    g.obj.metadata.name = name;
  }
  const ref = (kind, o, key) => {
    if (o && o[key] && rename.has(`${kind}/${o[key]}`)) o[key] = rename.get(`${kind}/${o[key]}`);
  };
  for (const o of res.objects) {
    const ps = podSpec(o);
    if (!ps) continue;
    for (const { c } of containersOf(o)) {
      for (const ef of c.envFrom || []) {
        ref("ConfigMap", ef.configMapRef, "name");
        ref("Secret", ef.secretRef, "name");
      }
      for (const e of c.env || []) {
        ref("ConfigMap", e.valueFrom?.configMapKeyRef, "name");
        ref("Secret", e.valueFrom?.secretKeyRef, "name");
      }
    }
    for (const v of ps.volumes || []) {
      ref("ConfigMap", v.configMap, "name");
      ref("Secret", v.secret, "secretName");
    }
  }
  return [...res.objects, ...[...res.generated.values()].map((g) => g.obj)];
}

// ---------------------------------------------------------------- selectors
const podLabels = (o) => o.spec?.template?.metadata?.labels || {};
function matches(sel, labels) {
  if (!sel) return false;
  for (const [k, v] of Object.entries(sel.matchLabels || {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions || []) {
    const has = e.key in labels;
    if (e.operator === "In" && !(has && e.values.includes(labels[e.key]))) return false;
    if (e.operator === "NotIn" && has && e.values.includes(labels[e.key])) return false;
    if (e.operator === "Exists" && !has) return false;
    if (e.operator === "DoesNotExist" && has) return false;
  }
  return true;
}
const plainSelector = (s) => (s && Object.keys(s).length ? { matchLabels: s } : null);
const isEmptySel = (s) => !s || (!Object.keys(s.matchLabels || {}).length && !(s.matchExpressions || []).length);
const portsOf = (o) => containersOf(o).flatMap(({ c }) => c.ports || []);
const hasPort = (o, p) => portsOf(o).some((x) => (typeof p === "number" ? x.containerPort === p : x.name === p));

// ---------------------------------------------------------------- checks on a build
function checkBuild(name, objs, externals) {
  const w = `build ${name}`;
  const by = (kind) => objs.filter((o) => o.kind === kind);
  const find = (kind, n) => objs.find((o) => o.kind === kind && o.metadata.name === n);
  const seen = new Set();
  for (const o of objs) {
    validateModel(o, w);
    const key = `${o.kind}/${o.metadata?.namespace || ""}/${o.metadata?.name}`;
    if (seen.has(key)) err(w, `duplicate ${id(o)}`);
    seen.add(key);
  }
  const workloads = objs.filter((o) => podSpec(o));
  const deployments = by("Deployment");
  const scaled = new Map(); // deployment name -> "HPA" | "KEDA"

  for (const o of workloads) {
    const ps = podSpec(o);
    const ow = `${w} ${id(o)}`;
    if (ps.serviceAccountName && !find("ServiceAccount", ps.serviceAccountName))
      err(ow, `serviceAccountName ${ps.serviceAccountName} is not defined`);
    const psc = ps.securityContext || {};
    if (psc.runAsNonRoot !== true) err(ow, "pod securityContext.runAsNonRoot must be true");
    if (!(psc.runAsUser > 0)) err(ow, "pod securityContext.runAsUser must be a non-root uid");
    if (psc.seccompProfile?.type !== "RuntimeDefault") err(ow, "pod seccompProfile must be RuntimeDefault");
    const vols = new Set((ps.volumes || []).map((v) => v.name));
    for (const v of ps.volumes || []) {
      if (v.configMap && !find("ConfigMap", v.configMap.name)) err(ow, `volume ${v.name}: ConfigMap ${v.configMap.name} is not defined`);
      if (v.secret && !find("Secret", v.secret.secretName) && !externals.has(v.secret.secretName))
        err(ow, `volume ${v.name}: Secret ${v.secret.secretName} is neither defined nor listed in ${EXTERNAL_SECRETS}`);
    }
    for (const { c, at } of containersOf(o)) {
      const cw = `${ow} ${at}`;
      const sc = c.securityContext || {};
      if (sc.allowPrivilegeEscalation !== false) err(cw, "allowPrivilegeEscalation must be false");
      if (sc.readOnlyRootFilesystem !== true) err(cw, "readOnlyRootFilesystem must be true");
      if (!(sc.capabilities?.drop || []).includes("ALL")) err(cw, "capabilities must drop ALL");
      if ((sc.capabilities?.add || []).length) err(cw, "no capability may be added");
      if (!c.resources?.requests?.cpu || !c.resources?.requests?.memory) err(cw, "resources.requests cpu and memory are required");
      if (!c.resources?.limits?.memory) err(cw, "resources.limits.memory is required");
      if (!/^paimon\/[a-z-]+(:[\w.-]+|@sha256:[0-9a-f]{64})$/.test(c.image || ""))
        err(cw, `image ${c.image} is not paimon/<name> with a tag or digest`);
      for (const m of c.volumeMounts || []) if (!vols.has(m.name)) err(cw, `volumeMount ${m.name} has no volume`);
      for (const pr of ["livenessProbe", "readinessProbe", "startupProbe"]) {
        const port = c[pr]?.httpGet?.port ?? c[pr]?.tcpSocket?.port;
        if (port !== undefined && !(c.ports || []).some((x) => (typeof port === "number" ? x.containerPort === port : x.name === port)))
          err(cw, `${pr} port ${port} is not a declared container port`);
      }
      for (const ef of c.envFrom || []) {
        if (ef.configMapRef && !find("ConfigMap", ef.configMapRef.name)) err(cw, `envFrom ConfigMap ${ef.configMapRef.name} is not defined`);
        if (ef.secretRef && !find("Secret", ef.secretRef.name) && !externals.has(ef.secretRef.name))
          err(cw, `envFrom Secret ${ef.secretRef.name} is neither defined nor listed in ${EXTERNAL_SECRETS}`);
      }
      const names = new Set();
      for (const e of c.env || []) {
        if (names.has(e.name)) err(cw, `env ${e.name} set twice`);
        names.add(e.name);
        const cm = e.valueFrom?.configMapKeyRef;
        if (cm) {
          const t = find("ConfigMap", cm.name);
          if (!t) err(cw, `env ${e.name}: ConfigMap ${cm.name} is not defined`);
          else if (!(cm.key in (t.data || {}))) err(cw, `env ${e.name}: ConfigMap ${cm.name} has no key ${cm.key}`);
        }
        const s = e.valueFrom?.secretKeyRef;
        if (s) {
          const t = find("Secret", s.name);
          if (t && !(s.key in { ...(t.data || {}), ...(t.stringData || {}) })) err(cw, `env ${e.name}: Secret ${s.name} has no key ${s.key}`);
          if (!t && !externals.has(s.name)) err(cw, `env ${e.name}: Secret ${s.name} is neither defined nor listed in ${EXTERNAL_SECRETS}`);
        }
      }
    }
  }

  // Design rules for the daemons (§7).
  const daemonDeps = deployments.filter((d) => d.metadata.name in DAEMONS);
  if (deployments.length) {
    for (const n of Object.keys(DAEMONS)) if (!find("Deployment", n)) err(w, `no Deployment for daemon ${n}`);
  }
  for (const d of daemonDeps) {
    const n = d.metadata.name;
    const dw = `${w} ${id(d)}`;
    const ps = podSpec(d);
    const c = ps.containers.find((x) => x.name === n) || ps.containers[0];
    const want = DAEMONS[n].port;
    if (!/^paimon\/([a-z]+)/.test(c.image || "") || c.image.split(/[:@]/)[0] !== `paimon/${n}`) err(dw, `image must be paimon/${n}`);
    if (!(c.ports || []).some((p) => p.containerPort === want)) err(dw, `container must declare port ${want}`);
    const envPort = (c.env || []).find((e) => e.name === "PAIMON_HTTP_PORT");
    if (!envPort || envPort.value !== String(want)) err(dw, `PAIMON_HTTP_PORT must be "${want}"`);
    if (c.livenessProbe?.httpGet?.path !== "/health/live") err(dw, "livenessProbe must be httpGet /health/live");
    if (c.readinessProbe?.httpGet?.path !== "/health/ready") err(dw, "readinessProbe must be httpGet /health/ready");
    const envNames = envOf(c, objs);
    for (const v of ["PAIMON_REDIS_URL", "PAIMON_DATABASE_URL", "PAIMON_HTTP_BIND"])
      if (!envNames.has(v)) err(dw, `environment lacks ${v}`);
    const bind = envNames.get("PAIMON_HTTP_BIND");
    if (bind !== undefined && bind !== null && bind !== "0.0.0.0") err(dw, "PAIMON_HTTP_BIND must be 0.0.0.0 in a pod (the default is loopback)");
    const grace = ps.terminationGracePeriodSeconds ?? 30;
    const pre = c.lifecycle?.preStop?.exec?.command;
    const preSecs = pre && pre[0] === "sleep" ? Number(pre[1]) || 0 : 0;
    if (!(grace > 11 + preSecs)) err(dw, `terminationGracePeriodSeconds ${grace} must exceed 11 s (+${preSecs} s preStop)`);
  }
  const listener = find("Deployment", "listener");
  if (listener) {
    if (listener.spec.replicas !== 2) err(`${w} Deployment/listener`, "must run 2 replicas (one active, one standby)");
    const lease = find("Lease", "paimon-listener");
    if (!lease) err(w, "no coordination.k8s.io Lease paimon-listener for the listener");
    if (podSpec(listener).automountServiceAccountToken === false) err(`${w} Deployment/listener`, "needs its ServiceAccount token to reach its Lease");
  }

  for (const s of by("Service")) {
    const sw = `${w} ${id(s)}`;
    const sel = plainSelector(s.spec?.selector);
    const pods = workloads.filter((o) => matches(sel, podLabels(o)));
    if (!pods.length) {
      err(sw, `selector ${JSON.stringify(s.spec?.selector)} matches no pod template`);
      continue;
    }
    for (const p of s.spec.ports || []) {
      const tp = p.targetPort ?? p.port;
      if (!pods.some((o) => hasPort(o, tp))) err(sw, `targetPort ${tp} is not a container port of the selected pods`);
    }
  }

  for (const o of by("HorizontalPodAutoscaler")) {
    const ow = `${w} ${id(o)}`;
    const t = find(o.spec.scaleTargetRef.kind, o.spec.scaleTargetRef.name);
    if (!t) {
      err(ow, `scaleTargetRef ${o.spec.scaleTargetRef.kind}/${o.spec.scaleTargetRef.name} is not defined`);
      continue;
    }
    if (scaled.has(t.metadata.name)) err(ow, `${id(t)} is already scaled by ${scaled.get(t.metadata.name)}`);
    scaled.set(t.metadata.name, id(o));
    if ((o.spec.minReplicas ?? 1) > o.spec.maxReplicas) err(ow, "minReplicas > maxReplicas");
    for (const m of o.spec.metrics || [])
      if (m.type === "Resource" && m.resource?.target?.type === "Utilization")
        for (const { c, at } of containersOf(t))
          if (!c.resources?.requests?.[m.resource.name]) err(ow, `${at} has no ${m.resource.name} request, so utilization is undefined`);
  }

  for (const o of by("ScaledObject")) {
    const ow = `${w} ${id(o)}`;
    const ref = o.spec.scaleTargetRef;
    const t = find(ref.kind || "Deployment", ref.name);
    if (!t) {
      err(ow, `scaleTargetRef ${ref.kind || "Deployment"}/${ref.name} is not defined`);
      continue;
    }
    if (scaled.has(t.metadata.name)) err(ow, `${id(t)} is already scaled by ${scaled.get(t.metadata.name)}`);
    scaled.set(t.metadata.name, id(o));
    const svc = t.metadata.labels?.["app.kubernetes.io/name"] || t.metadata.name;
    const c = podSpec(t).containers[0];
    const env = envOf(c, objs);
    const topics = new Map();
    for (const tr of o.spec.triggers || []) {
      if (tr.type !== "redis-streams") continue;
      const md = tr.metadata || {};
      const m = /^paimon:([a-z][a-z0-9.]*):(critical|high|normal)$/.exec(md.stream || "");
      if (!m) err(ow, `stream ${md.stream} is not paimon:<topic>:<critical|high|normal>`);
      else (topics.get(m[1]) || topics.set(m[1], new Set()).get(m[1])).add(m[2]);
      if (md.consumerGroup !== svc) err(ow, `stream ${md.stream}: consumerGroup ${md.consumerGroup} is not the service's group ${svc}`);
      if (!md.lagCount && !md.pendingEntriesCount) err(ow, `stream ${md.stream}: scale on lagCount (or pendingEntriesCount)`);
      if (md.addressFromEnv && !env.has(md.addressFromEnv)) err(ow, `addressFromEnv ${md.addressFromEnv} is not in ${t.metadata.name}'s environment`);
      if (!md.addressFromEnv && !md.address && !md.host) err(ow, `stream ${md.stream}: no Redis address`);
    }
    for (const [tp, ps] of topics)
      for (const p of PRIORITIES) if (!ps.has(p)) err(ow, `topic ${tp}: no trigger on paimon:${tp}:${p}`);
    const want = DAEMONS[svc]?.topics;
    if (want) {
      for (const tp of want) if (!topics.has(tp)) err(ow, `no trigger for topic ${tp} that ${svc} consumes`);
      for (const tp of topics.keys()) if (!want.includes(tp)) err(ow, `${svc} does not consume topic ${tp}`);
    }
    if ((o.spec.minReplicaCount ?? 0) > (o.spec.maxReplicaCount ?? 100)) err(ow, "minReplicaCount > maxReplicaCount");
  }
  for (const n of ["approval", "rebalance", "risk", "notifier"])
    if (find("Deployment", n) && !by("ScaledObject").some((o) => o.spec.scaleTargetRef.name === n))
      err(w, `worker ${n} has no KEDA ScaledObject`);
  if (find("Deployment", "api") && !by("HorizontalPodAutoscaler").some((o) => o.spec.scaleTargetRef.name === "api"))
    err(w, "api has no HorizontalPodAutoscaler");

  for (const o of by("PodDisruptionBudget")) {
    const ow = `${w} ${id(o)}`;
    const pods = deployments.filter((d) => matches(o.spec.selector, podLabels(d)));
    if (!pods.length) err(ow, "selector matches no Deployment");
    for (const d of pods) {
      const n = d.metadata.name;
      const hpa = by("HorizontalPodAutoscaler").find((h) => h.spec.scaleTargetRef.name === n);
      const so = by("ScaledObject").find((h) => h.spec.scaleTargetRef.name === n);
      const min = hpa ? (hpa.spec.minReplicas ?? 1) : so ? (so.spec.minReplicaCount ?? 0) : (d.spec.replicas ?? 1);
      if (typeof o.spec.minAvailable === "number" && o.spec.minAvailable >= min)
        err(ow, `minAvailable ${o.spec.minAvailable} >= the ${min} replica(s) of ${n}: a node drain would block`);
    }
  }
  for (const d of daemonDeps)
    if (!by("PodDisruptionBudget").some((o) => matches(o.spec.selector, podLabels(d)))) err(w, `${id(d)} has no PodDisruptionBudget`);

  // NetworkPolicies: selectors must select something, named ports must exist, and
  // in-namespace sources may only be the api (§7).
  const nps = by("NetworkPolicy");
  if (deployments.length && !nps.some((p) => isEmptySel(p.spec.podSelector) && (p.spec.policyTypes || []).includes("Ingress") && (p.spec.policyTypes || []).includes("Egress") && !(p.spec.ingress || []).length && !(p.spec.egress || []).length))
    err(w, "no default-deny NetworkPolicy (empty podSelector, Ingress and Egress, no rules)");
  const api = find("Deployment", "api");
  for (const p of nps) {
    const pw = `${w} ${id(p)}`;
    const targets = isEmptySel(p.spec.podSelector) ? workloads : workloads.filter((o) => matches(p.spec.podSelector, podLabels(o)));
    if (!targets.length) err(pw, "podSelector matches no pod template");
    for (const [dir, rules] of [
      ["ingress", p.spec.ingress || []],
      ["egress", p.spec.egress || []],
    ]) {
      for (const r of rules) {
        const peers = dir === "ingress" ? r.from : r.to;
        let peerPods = null;
        for (const peer of peers || []) {
          if (peer.namespaceSelector || peer.ipBlock) continue;
          const sel = workloads.filter((o) => matches(peer.podSelector, podLabels(o)));
          if (!sel.length) err(pw, `${dir} peer podSelector ${JSON.stringify(peer.podSelector)} matches no pod template`);
          peerPods = (peerPods || []).concat(sel);
          if (dir === "ingress" && api) {
            const bad = sel.filter((o) => o !== api && targets.some((t) => t !== api));
            if (bad.length) err(pw, `${bad.map(id).join(", ")} may reach internal ports: only the api may`);
          }
        }
        if (dir === "ingress" && (!peers || !peers.length)) err(pw, "an ingress rule without `from` admits every source");
        const owners = dir === "ingress" ? targets : peerPods;
        for (const port of r.ports || []) {
          if (typeof port.port === "string" && owners && owners.length && !owners.some((o) => hasPort(o, port.port)))
            err(pw, `${dir} named port ${port.port} is not declared by the selected pods`);
        }
      }
    }
  }

  for (const o of by("Ingress")) {
    const ow = `${w} ${id(o)}`;
    if (!(o.spec.tls || []).length) err(ow, "Ingress without TLS");
    for (const t of o.spec.tls || [])
      if (t.secretName && !find("Secret", t.secretName) && !externals.has(t.secretName))
        err(ow, `TLS Secret ${t.secretName} is neither defined nor listed in ${EXTERNAL_SECRETS}`);
    for (const rule of o.spec.rules || [])
      for (const p of rule.http?.paths || []) {
        const b = p.backend?.service;
        const s = b && find("Service", b.name);
        if (!s) {
          err(ow, `backend Service ${b?.name} is not defined`);
          continue;
        }
        if (s.metadata.name !== "api") err(ow, `only the api may be exposed, not ${s.metadata.name}`);
        if (!(s.spec.ports || []).some((x) => (b.port.name ? x.name === b.port.name : x.port === b.port.number)))
          err(ow, `Service ${b.name} has no port ${b.port.name || b.port.number}`);
      }
  }

  for (const rb of by("RoleBinding")) {
    const ow = `${w} ${id(rb)}`;
    if (!find(rb.roleRef.kind, rb.roleRef.name)) err(ow, `roleRef ${rb.roleRef.kind}/${rb.roleRef.name} is not defined`);
    for (const s of rb.subjects || [])
      if (s.kind === "ServiceAccount" && !find("ServiceAccount", s.name)) err(ow, `subject ServiceAccount ${s.name} is not defined`);
  }
  for (const r of by("Role"))
    for (const rule of r.rules || [])
      if ((rule.resources || []).includes("leases"))
        for (const n of rule.resourceNames || []) if (!find("Lease", n)) err(`${w} ${id(r)}`, `Lease ${n} is not defined`);

  for (const sm of by("ServiceMonitor")) {
    const ow = `${w} ${id(sm)}`;
    const svcs = by("Service").filter((s) => matches(sm.spec.selector, s.metadata.labels || {}));
    if (!svcs.length) err(ow, "selector matches no Service");
    for (const e of sm.spec.endpoints || [])
      if (e.port && !svcs.every((s) => (s.spec.ports || []).some((p) => p.name === e.port))) err(ow, `endpoint port ${e.port} missing on a selected Service`);
  }

  for (const j of by("Job")) {
    const c = podSpec(j).containers[0];
    if (c.image?.startsWith("paimon/migrate") && !(c.args || []).includes("up")) err(`${w} ${id(j)}`, "the migrations Job must run `paimon-migrate up`");
  }
}

// Environment variable names (-> value when literal) a container gets, envFrom included.
function envOf(c, objs) {
  const out = new Map();
  for (const ef of c.envFrom || []) {
    const cm = ef.configMapRef && objs.find((o) => o.kind === "ConfigMap" && o.metadata.name === ef.configMapRef.name);
    for (const [k, v] of Object.entries(cm?.data || {})) out.set((ef.prefix || "") + k, v);
    const s = ef.secretRef && objs.find((o) => o.kind === "Secret" && o.metadata.name === ef.secretRef.name);
    for (const k of Object.keys({ ...(s?.data || {}), ...(s?.stringData || {}) })) out.set((ef.prefix || "") + k, null);
  }
  for (const e of c.env || []) out.set(e.name, e.value ?? null);
  return out;
}

// ---------------------------------------------------------------- deploy folder
function checkDeploy(dir, appObjs) {
  const ports = Object.fromEntries(Object.entries(DAEMONS).map(([n, d]) => [n, d.port]));
  const composeFile = path.join(dir, "compose", "docker-compose.yml");
  if (fs.existsSync(composeFile)) {
    const [c] = loadDocs(composeFile);
    const w = rel(composeFile);
    const svcs = c?.services || {};
    for (const n of ["redis", "postgres", "anvil", "migrate", ...Object.keys(DAEMONS)]) if (!svcs[n]) err(w, `no service ${n}`);
    for (const n of Object.keys(DAEMONS)) {
      const s = svcs[n];
      if (!s) continue;
      if (s.image !== undefined && !String(s.image).startsWith(`paimon/${n}`)) err(w, `${n}: image must be paimon/${n}`);
      const dep = s.depends_on || {};
      if (dep.migrate?.condition !== "service_completed_successfully") err(w, `${n}: must wait for migrate (service_completed_successfully)`);
      const env = s.environment || {};
      if (String(env.PAIMON_HTTP_PORT) !== String(ports[n])) err(w, `${n}: PAIMON_HTTP_PORT must be ${ports[n]}`);
      if (env.PAIMON_HTTP_BIND !== "0.0.0.0") err(w, `${n}: PAIMON_HTTP_BIND must be 0.0.0.0`);
      if (!s.healthcheck) err(w, `${n}: no healthcheck`);
      if (s.stop_grace_period === undefined || parseInt(s.stop_grace_period, 10) <= 11) err(w, `${n}: stop_grace_period must exceed 11s`);
    }
  }
  const promFile = path.join(dir, "prometheus", "prometheus.yml");
  const rulesFile = path.join(dir, "prometheus", "alerts.yml");
  if (fs.existsSync(promFile)) {
    const [p] = loadDocs(promFile);
    const w = rel(promFile);
    const targets = (p?.scrape_configs || []).flatMap((s) =>
      (s.static_configs || []).flatMap((sc) => (sc.targets || []).map((t) => ({ t, path: s.metrics_path || "/metrics" }))),
    );
    for (const [n, port] of Object.entries(ports))
      if (!targets.some((x) => x.t === `${n}:${port}` && x.path === "/metrics")) err(w, `no /metrics scrape of ${n}:${port}`);
    for (const f of p?.rule_files || []) if (!fs.existsSync(path.resolve(path.dirname(promFile), f))) err(w, `rule file ${f} does not exist`);
  }
  if (fs.existsSync(rulesFile)) {
    const [r] = loadDocs(rulesFile);
    const w = rel(rulesFile);
    const rules = (r?.groups || []).flatMap((g) => g.rules || []);
    const exprs = rules.map((x) => x.expr || "").join("\n");
    for (const m of ["paimon_bus_lag", "paimon_bus_pending", "paimon_bus_dlq_length"])
      if (!exprs.includes(m)) err(w, `no alert rule on ${m}`);
    for (const x of rules) if (!x.alert || !x.expr || !x.labels?.severity) err(w, `rule ${x.alert || "?"} needs alert, expr and labels.severity`);
    // The PrometheusRule in k8s (when present) must carry the same rules.
    const pr = appObjs.filter((o) => o.kind === "PrometheusRule");
    if (pr.length) {
      const norm = (groups) => groups.map((g) => ({ name: g.name, rules: (g.rules || []).map((x) => ({ ...x, expr: String(x.expr).trim() })) }));
      if (!pr.some((o) => isDeepStrictEqual(norm(o.spec.groups || []), norm(r.groups || []))))
        err(w, "the PrometheusRule under k8s/ differs from these rules");
    }
  }
}

// ---------------------------------------------------------------- main
if (!fs.existsSync(args.k8s)) {
  console.error(`error: ${rel(args.k8s)}: no such folder`);
  process.exit(1);
}
const files = walk(args.k8s);
let ndocs = 0;
const kdirs = files.filter(isKustomization).map((f) => path.dirname(f));
// Patch files are partial objects: they are checked once applied, in the builds.
const patchFiles = new Set();
for (const d of kdirs) {
  const [k] = loadDocs(kfile(d));
  for (const p of k?.patches || []) if (p.path) patchFiles.add(path.resolve(d, p.path));
}
const namespaces = new Map();
for (const f of files) {
  if (isKustomization(f) || patchFiles.has(f)) continue;
  const docs = loadDocs(f);
  ndocs += docs.length;
  for (const d of docs) {
    validateModel(d, rel(f));
    if (d?.kind === "Namespace") {
      const prev = namespaces.get(d.metadata?.name);
      if (prev && !isDeepStrictEqual(prev.doc, d)) err(rel(f), `Namespace ${d.metadata.name} differs from the one in ${rel(prev.file)}`);
      if (!prev) namespaces.set(d.metadata?.name, { doc: d, file: f });
    }
  }
}
if (!kdirs.length) err(rel(args.k8s), "no kustomization.yaml");
ndocs += kdirs.length;

// Roots: kustomizations no other kustomization includes.
const included = new Set();
for (const d of kdirs) {
  const [k] = loadDocs(kfile(d));
  for (const r of k?.resources || []) {
    const p = path.resolve(d, r);
    if (fs.existsSync(p) && fs.statSync(p).isDirectory()) included.add(p);
  }
}
const roots = kdirs.filter((d) => !included.has(d));
const used = new Set();
const builds = [];
let appObjs = [];
for (const d of roots) {
  const res = build(d);
  res.files.forEach((f) => used.add(f));
  const objs = finish(res);
  checkBuild(rel(d), objs, res.externals);
  builds.push(`${rel(d)} (${objs.length} objects)`);
  if (objs.some((o) => o.kind === "Deployment")) appObjs = appObjs.concat(objs);
}
for (const f of files) if (!used.has(f)) err(rel(f), "is not part of any kustomization build");
if (args.deploy) checkDeploy(args.deploy, appObjs);

if (errors.length) {
  for (const e of errors) console.error(`error: ${e}`);
  console.error(`k8s-validate: ${errors.length} error(s)`);
  process.exit(1);
}
if (!args.quiet) {
  console.log(`k8s-validate: ${files.length} files, ${ndocs} documents valid`);
  for (const b of builds) console.log(`  build ${b}: ok`);
  console.log("k8s-validate: ok");
}
