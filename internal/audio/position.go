package audio

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

//go:embed prompts/queue/*.wav
var queueWAVs embed.FS

// queuePieces are the position prompt's recorded pieces: "caller" ("You
// are caller number") and the numbers "0" to "20" (espeak-ng;
// scripts/make-prompts makes them again).
var queuePieces = sync.OnceValue(func() map[string][]Frame {
	pieces := map[string][]Frame{}
	for _, name := range positionNames() {
		path := "prompts/queue/" + name + ".wav"
		data, err := queueWAVs.ReadFile(path)
		if err != nil {
			panic(fmt.Sprintf("audio: the built-in queue prompt %s: %v", path, err))
		}
		frames, err := decodeWAVFrames(bytes.NewReader(data), path)
		if err != nil || len(frames) == 0 {
			panic(fmt.Sprintf("audio: the built-in queue prompt %s: %v", path, err)) // the tests read them
		}
		pieces[name] = frames
	}
	return pieces
})

// maxSpokenNumber is the highest number recorded as a word.
const maxSpokenNumber = 20

func numberNames() []string {
	names := make([]string, 0, maxSpokenNumber+1)
	for n := range maxSpokenNumber + 1 {
		names = append(names, strconv.Itoa(n))
	}
	return names
}

// PositionVoice is a voice the position prompt is spoken in: its pieces
// "caller" ("You are caller number") and the numbers "0" to "20".
type PositionVoice struct {
	pieces map[string][]Frame
}

// positionNames are the pieces' names, as the files of a voice's
// directory are named (NAME.wav).
func positionNames() []string { return append([]string{"caller"}, numberNames()...) }

// BuiltInVoice is the built-in English voice (espeak-ng recordings in
// prompts/queue).
var BuiltInVoice = sync.OnceValue(func() *PositionVoice { return &PositionVoice{pieces: queuePieces()} })

// LoadPositionVoice reads an operator's own voice from dir: caller.wav
// and 0.wav to 20.wav, named as the built-in ones in prompts/queue (PCM,
// any rate, mono or stereo; resampled to 8 kHz). Every file must be there
// and hold audio; the error names each that is not.
func LoadPositionVoice(dir string) (*PositionVoice, error) {
	v := &PositionVoice{pieces: map[string][]Frame{}}
	var errs []error
	for _, name := range positionNames() {
		path := filepath.Join(dir, name+".wav")
		if _, err := os.Stat(path); err != nil {
			errs = append(errs, fmt.Errorf("queue prompts: %w", err))
			continue
		}
		frames, err := readWAVFrames(path)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("queue prompts: %w", err))
		case len(frames) == 0:
			errs = append(errs, fmt.Errorf("queue prompts: %s: no audio", path))
		default:
			v.pieces[name] = frames
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return v, nil
}

// Prompt is "You are caller number N" in the voice for a caller at
// position n (from 1) of a queue: numbers up to 20 are spoken as words,
// higher ones digit by digit ("two five" for 25), the recordings having no
// tens. Nil for n < 1.
func (v *PositionVoice) Prompt(n int) *Prompt {
	if n < 1 {
		return nil
	}
	frames := append([]Frame(nil), v.pieces["caller"]...)
	if n <= maxSpokenNumber {
		frames = append(frames, v.pieces[strconv.Itoa(n)]...)
	} else {
		for _, d := range strconv.Itoa(n) {
			frames = append(frames, v.pieces[string(d)]...)
		}
	}
	return &Prompt{frames: frames}
}

// PositionPrompt is BuiltInVoice's prompt for position n.
func PositionPrompt(n int) *Prompt { return BuiltInVoice().Prompt(n) }
