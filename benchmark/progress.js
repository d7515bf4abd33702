'use strict'
// Progress on stderr. On a terminal: one bar redrawn in place, with log
// lines printed above it. Otherwise (CI, pipes, files): plain lines, the
// detail throttled to one line per phase or per 10 s.

function clock (secs) {
  if (!Number.isFinite(secs) || secs < 0) return '?'
  secs = Math.round(secs)
  const h = Math.floor(secs / 3600)
  const m = Math.floor(secs / 60) % 60
  const s = String(secs % 60).padStart(2, '0')
  return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`
}

class Progress {
  /**
   * @param {number} totalWeight  sum of the weights (estimated seconds) of all steps
   * @param {object} [o]
   * @param {NodeJS.WriteStream} [o.stream=process.stderr]
   * @param {boolean} [o.tty]  redraw in place (default: stream.isTTY)
   */
  constructor (totalWeight, { stream = process.stderr, tty } = {}) {
    this.stream = stream
    this.tty = tty === undefined ? !!stream.isTTY : tty
    this.total = totalWeight
    this.doneWeight = 0
    this.step = null
    this.t0 = Date.now()
    this.text = ''
    this.fraction = null
    this.lastPlain = { key: '', at: 0 }
    this.drawn = false
    this.timer = null
    if (this.tty) {
      this.timer = setInterval(() => this.draw(), 500)
      this.timer.unref()
    }
  }

  /** A new unit of work: label ('broadcast r2/3 socketio') and its weight. */
  begin (label, weight) {
    this.step = { label, weight, t0: Date.now(), durationSecs: null }
    this.text = ''
    this.fraction = null
    if (this.tty) this.draw()
    else this.plain(`[${this.percent()}% ${clock((Date.now() - this.t0) / 1000)}] ${label}`)
  }

  /**
   * Detail for the current step. fraction (0..1) moves the bar within the
   * step; durationSecs says the phase takes that long (the bar runs with it).
   */
  detail (text, fraction = null, durationSecs = null) {
    this.text = text
    this.fraction = fraction
    if (this.step && durationSecs) this.step.phase = { t0: Date.now(), secs: durationSecs }
    else if (this.step && fraction != null) this.step.phase = null
    if (this.tty) return this.draw()
    const key = `${this.step ? this.step.label : ''} ${text.replace(/[\d.,/]+/g, '#')}`
    const now = Date.now()
    if (key !== this.lastPlain.key || now - this.lastPlain.at >= 10000) {
      this.lastPlain = { key, at: now }
      this.plain(`  ${this.step ? this.step.label + ': ' : ''}${text}`)
    }
  }

  end () {
    if (this.step) this.doneWeight += this.step.weight
    this.step = null
    this.text = ''
    if (this.tty) this.draw()
  }

  /**
   * A line that stays (above the bar on a terminal). `out` may be another
   * stream (the run's tables go to stdout): on a terminal both end up on the
   * same screen, so the bar is cleared around it all the same.
   */
  log (line, out = this.stream) {
    if (this.tty) {
      this.clear()
      out.write(line + '\n')
      this.draw()
    } else {
      out.write(line + '\n')
    }
  }

  stepFraction () {
    if (!this.step) return 0
    if (this.fraction != null) return Math.min(1, this.fraction)
    if (this.step.phase) return Math.min(0.95, (Date.now() - this.step.phase.t0) / 1000 / this.step.phase.secs)
    return 0
  }

  done () { return Math.min(1, (this.doneWeight + (this.step ? this.step.weight * this.stepFraction() : 0)) / (this.total || 1)) }

  percent () { return Math.floor(this.done() * 100) }

  plain (line) { this.stream.write(line + '\n') }

  clear () {
    if (this.drawn) this.stream.write('\r\x1b[K')
    this.drawn = false
  }

  draw () {
    if (!this.tty) return
    const cols = this.stream.columns || 100
    const f = this.done()
    const elapsed = (Date.now() - this.t0) / 1000
    const eta = f > 0.02 ? elapsed / f - elapsed : NaN
    const width = Math.max(10, Math.min(30, cols - 70))
    const full = Math.round(f * width)
    const bar = '█'.repeat(full) + '░'.repeat(width - full)
    let line = `${bar} ${String(Math.floor(f * 100)).padStart(3)}% ${clock(elapsed)} (~${clock(eta)} left)`
    if (this.step) line += `  ${this.step.label}${this.text ? ': ' + this.text : ''}`
    if (line.length > cols - 1) line = line.slice(0, cols - 2) + '…'
    this.stream.write('\r\x1b[K' + line)
    this.drawn = true
  }

  close () {
    if (this.timer) clearInterval(this.timer)
    if (this.tty) this.clear()
  }
}

module.exports = { Progress, clock }
