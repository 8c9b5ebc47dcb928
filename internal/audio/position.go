package audio

import (
	"bytes"
	"embed"
	"fmt"
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
	for _, name := range append([]string{"caller"}, numberNames()...) {
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

// PositionPrompt is "You are caller number N" for a caller at position n
// (from 1) of a queue: numbers up to 20 are spoken as words, higher ones
// digit by digit ("two five" for 25), the recordings having no tens. Nil
// for n < 1.
func PositionPrompt(n int) *Prompt {
	if n < 1 {
		return nil
	}
	pieces := queuePieces()
	frames := append([]Frame(nil), pieces["caller"]...)
	if n <= maxSpokenNumber {
		frames = append(frames, pieces[strconv.Itoa(n)]...)
	} else {
		for _, d := range strconv.Itoa(n) {
			frames = append(frames, pieces[string(d)]...)
		}
	}
	return &Prompt{frames: frames}
}
