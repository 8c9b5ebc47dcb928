// Package recording records calls on demand: POST
// /api/calls/{id}/recording/start, stop, pause and resume.
//
// A recording is a stereo WAV file (8 kHz, the mixer's rate, 16-bit PCM):
// the left channel is what the call's agent sends into the call (her
// microphone as the others hear it: silent while she is muted or holds
// the call), the right everything else in the call (the mix of the others,
// what she hears). The audio comes from a per-call tap on the mixer's
// clock (audio.Mixer.SetTap), one frame per 20 ms tick, so both channels
// keep the call's time; a tick in which the call was not mixed (ringing,
// between routes) writes silence.
//
// Pause writes silence in both channels rather than cutting, so a file's
// offsets stay the call's wall clock (a reviewer can line them up with
// the call's timeline); the paused spans are in the metadata.
//
// Crash safety: the tap hands the writer 200 ms batches; the writer
// flushes every second and then rewrites the header's sizes, so a killed
// process leaves a file that reads as a WAV up to the last flush (at most
// 1.2 s lost). At the next start the service repairs the files
// its node left unfinished (cuts a partial frame, rewrites the header from
// the size on disk) and marks their recordings stopped at the file's last
// change.
//
// Metadata (calls.Recording: file, who started it, started/stopped,
// paused spans, duration) is kept by the history store (calls.Recordings)
// and shown with the call's history. Every change is published as a
// recordingStateChanged event to the call's agent and supervisors.
//
// Retention: with Config.Retention set, an owned goroutine deletes the
// files of recordings that stopped longer ago and marks their metadata
// deletedAt; each node deletes only its own files.
//
// "Always record" for queues: StartFor is the hook a queue calls when it
// connects a call (by calls.ActorSystem).
package recording
