// README.md's code examples are meant to be copied: every ```js block must
// parse (CommonJS, or ESM when it imports), and every ```ts block must
// type-check under tsc --strict (module nodenext) against index.d.ts, with
// 'ferrosocket' resolved through the package's own exports map.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const readme = readFileSync(join(root, 'README.md'), 'utf8')
const blocks = [...readme.matchAll(/^```(js|ts)\n([\s\S]*?)^```$/gm)].map((m) => ({
  lang: m[1], code: m[2], line: readme.slice(0, m.index).split('\n').length
}))
const isEsm = (code) => /^\s*(import|export) /m.test(code)

test('README has JavaScript and TypeScript examples', () => {
  assert.ok(blocks.filter((b) => b.lang === 'js').length >= 4)
  assert.ok(blocks.filter((b) => b.lang === 'ts').length >= 2)
})

test('every README ```js block parses', () => {
  const dir = mkdtempSync(join(root, '.readme-check-'))
  try {
    for (const b of blocks.filter((b) => b.lang === 'js')) {
      const file = join(dir, `block-${b.line}.${isEsm(b.code) ? 'mjs' : 'cjs'}`)
      writeFileSync(file, b.code)
      const r = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8' })
      assert.equal(r.status, 0, `README.md line ${b.line}:\n${r.stderr}`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('every README ```ts block type-checks under tsc --strict', { timeout: 120_000 }, () => {
  // Inside the repo, so that 'ferrosocket' resolves to this package itself.
  const dir = mkdtempSync(join(root, '.readme-check-'))
  try {
    const files = blocks.filter((b) => b.lang === 'ts').map((b) => {
      const file = join(dir, `block-${b.line}.mts`)
      writeFileSync(file, b.code + '\nexport {}\n')
      return file
    })
    const tsc = join(root, 'node_modules/typescript/bin/tsc')
    const r = spawnSync(process.execPath, [tsc, '--noEmit', '--strict', '--module', 'nodenext',
      '--moduleResolution', 'nodenext', '--types', 'node', ...files], { cwd: root, encoding: 'utf8' })
    assert.equal(r.status, 0, r.stdout + r.stderr)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
