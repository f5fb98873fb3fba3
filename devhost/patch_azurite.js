// Run by `npm ci` (package.json postinstall): two behaviour-preserving fixes to Azurite 3.35's queue
// service, which otherwise saturates its single thread once a few thousand messages have gone through it.
//
// LokiJS rebuilds every index of a collection (a sort of all its documents) after any batch removal, even
// of nothing. Azurite's queue store removes expired messages that way before every receive and delete
// (almost always an empty batch), and its extent garbage collector deletes each message body's extent
// that way, one extent at a time: with thousands of extents the collector's sweep is quadratic and held
// the queue service for 1.5-2 s every sweep, stalling every put and receive (the webhook's answers with
// them). Here an empty batch is skipped and an extent is removed as the single document it is (LokiJS
// then updates its index in place). Idempotent; fails loudly when the code to patch is not there (an
// Azurite upgrade: check whether the fixes are still needed).
"use strict";
const fs = require("fs");
const path = require("path");

const dist = path.join(__dirname, "..", "node_modules", "azurite", "dist", "src");
const NOTE = "// (patched: see devhost/patch_azurite.js)";
const patches = [
  {
    file: path.join(dist, "queue", "persistence", "LokiQueueMetadataStore.js"),
    original: "            .data();\n        coll.remove(docs);\n    }\n}",
    patched: `            .data();\n        if (docs.length > 0) {\n            coll.remove(docs); ${NOTE}\n        }\n    }\n}`,
  },
  {
    file: path.join(dist, "common", "persistence", "LokiExtentMetadataStore.js"),
    original: "        return coll.findAndRemove({ id: extentId });\n",
    patched: `        const doc = coll.findOne({ id: extentId }); ${NOTE}\n        if (doc) {\n            coll.remove(doc);\n        }\n`,
  },
];

let failed = false;
for (const { file, original, patched } of patches) {
  const text = fs.readFileSync(file, "utf8");
  const name = path.relative(dist, file);
  if (text.includes(patched)) {
    console.log(`azurite ${name}: already patched`);
  } else if (text.split(original).length === 2) {
    fs.writeFileSync(file, text.replace(original, patched));
    console.log(`azurite ${name}: patched`);
  } else {
    console.error(`azurite ${name}: the code to patch was not found`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
