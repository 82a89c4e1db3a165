// Prints, as one JSON object on stdout, the JSON Schemas of the custom resources k8s/overlays use: those
// @kubernetes-models/keda and @kubernetes-models/prometheus-operator generated from the CRDs of KEDA
// 2.10.1 and the Prometheus Operator 0.57.0 (each CRD's openAPIV3Schema, with `nullable` kept and the
// object metadata as a $ref to the apimachinery schema). tests/deploy/test_k8s_overlays.py validates the
// rendered overlays against them with Python's jsonschema.
//
// The packages keep each schema in a closure and hand it to @kubernetes-models/validate's register()
// when a model is first validated; replacing register() before the models load collects every schema
// (and those it refers to) under the id the $refs use.
//
// Usage: node tools/deploy/crd-schemas.cjs  (after `npm ci` in tools/deploy: tools/deploy/crd-schemas.sh)
"use strict";

const validate = require("@kubernetes-models/validate");

const MODELS = [
  ["@kubernetes-models/keda/keda.sh/v1alpha1/ScaledJob", "ScaledJob"],
  ["@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject", "ScaledObject"],
  ["@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication", "TriggerAuthentication"],
  ["@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor", "ServiceMonitor"],
  ["@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor", "PodMonitor"],
];

const schemas = {};
validate.register = (id, schema) => {
  schemas[id] = schema;
};
validate.validate = () => {}; // only the registration is wanted, not the package's own ajv check

for (const [module, kind] of MODELS) {
  const Model = require(module)[kind];
  new Model({ metadata: { name: "schema-export" } }).validate();
}

// The id of each kind's schema, by "apiVersion/kind", so that the caller need not know the naming.
const kinds = {};
for (const [module, kind] of MODELS) {
  const group = module.split("/").slice(2, 4).join("/");
  kinds[`${group}/${kind}`] = `${group.replace("/", ".")}.${kind}`;
}
for (const id of Object.values(kinds)) {
  if (!(id in schemas)) throw new Error(`the model did not register the schema ${id}`);
}

process.stdout.write(JSON.stringify({ kinds, schemas }));
