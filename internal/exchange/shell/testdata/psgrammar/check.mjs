#!/usr/bin/env node
// check.mjs FILE... — parses PowerShell scripts with the tree-sitter
// PowerShell grammar (WebAssembly build, so no native toolchain is needed)
// and lists every ERROR and MISSING node as file:line:col.
//
// Nothing on the build machines can run PowerShell, so a real grammar is the
// only mechanical check the host bootstrap script gets before it meets a
// Windows server. Tree-sitter recovers from errors instead of stopping, so
// one run reports every broken spot, not only the first.
//
// Exit status: 0 all files parse cleanly, 1 at least one syntax error,
// 2 usage or I/O trouble (so callers can tell "broken script" from "broken
// tool" — the Makefile's negative test insists on exactly 1).

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { Parser, Language } from 'web-tree-sitter';

const require = createRequire(import.meta.url);

async function loadPowerShell() {
  await Parser.init();
  const wasm = require.resolve('tree-sitter-powershell/tree-sitter-powershell.wasm');
  const lang = await Language.load(wasm);
  const parser = new Parser();
  parser.setLanguage(lang);
  return parser;
}

// problems walks the whole tree; a cursor keeps it iterative, so deeply
// nested scripts cannot overflow the JS stack.
function problems(tree) {
  const out = [];
  const cursor = tree.walk();
  let descend = true;
  for (;;) {
    const node = cursor.currentNode;
    if (descend && (node.isError || node.isMissing)) {
      const p = node.startPosition;
      const what = node.isMissing ? `MISSING ${node.type}` : 'ERROR';
      const text = node.text.split('\n')[0].slice(0, 60);
      out.push({ line: p.row + 1, col: p.column + 1, what, text });
    }
    if (descend && cursor.gotoFirstChild()) continue;
    if (cursor.gotoNextSibling()) { descend = true; continue; }
    if (!cursor.gotoParent()) break;
    descend = false;
  }
  return out;
}

async function main(files) {
  if (files.length === 0) {
    console.error('usage: check.mjs FILE.ps1...');
    return 2;
  }
  let parser;
  try {
    parser = await loadPowerShell();
  } catch (err) {
    console.error(`psgrammar: cannot load the PowerShell grammar: ${err.message}`);
    return 2;
  }
  let status = 0;
  for (const file of files) {
    let src;
    try {
      src = await readFile(file, 'utf8');
    } catch (err) {
      console.error(`psgrammar: ${file}: ${err.message}`);
      return 2;
    }
    const tree = parser.parse(src);
    const found = problems(tree);
    if (found.length === 0 && tree.rootNode.hasError) {
      // hasError without a located node should not happen; never pass it silently.
      found.push({ line: 1, col: 1, what: 'ERROR', text: '(unlocated)' });
    }
    if (found.length === 0) {
      console.log(`psgrammar: ${file}: ok`);
      continue;
    }
    status = 1;
    for (const f of found) {
      console.log(`${file}:${f.line}:${f.col}: ${f.what} ${JSON.stringify(f.text)}`);
    }
  }
  return status;
}

process.exitCode = await main(process.argv.slice(2));
