package audio

// Speaking detection thresholds: a participant starts speaking after
// speakOnFrames frames above speakOnDBov, and stops after speakOffFrames
// frames below speakOffDBov. The gap between the levels and the long
// hangover keep the indicator from flickering between words.
const (
	speakOnDBov    = -40.0
	speakOffDBov   = -46.0
	speakOnFrames  = 2  // 40 ms
	speakOffFrames = 25 // 500 ms
)

// speakingDetector turns frame levels into a steady speaking flag.
type speakingDetector struct {
	speaking bool
	run      int // consecutive frames arguing for the other state
}

// update feeds one frame's level (dBov) and reports the state after it and
// whether it changed.
func (d *speakingDetector) update(dBov float64) (speaking, changed bool) {
	var toggle bool
	if d.speaking {
		toggle = dBov < speakOffDBov
	} else {
		toggle = dBov > speakOnDBov
	}
	if !toggle {
		d.run = 0
		return d.speaking, false
	}
	d.run++
	need := speakOnFrames
	if d.speaking {
		need = speakOffFrames
	}
	if d.run < need {
		return d.speaking, false
	}
	d.speaking, d.run = !d.speaking, 0
	return d.speaking, true
}

// reset forces the flag off (muted, held, gone) and reports whether it
// changed.
func (d *speakingDetector) reset() bool {
	was := d.speaking
	d.speaking, d.run = false, 0
	return was
}
