// Package analysis measures signals: tone power (Goertzel), tone SNR, and
// aligned cross-correlation between a sent and a received signal. Tests of
// media, app and ui use it to check that audio arrived.
package analysis

import (
	"math"
	"math/cmplx"
)

// Sine returns n samples of a sine at freq Hz with peak amplitude amp
// (0..32767) sampled at rate Hz.
func Sine(freq, amp float64, rate, n int) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
	}
	return out
}

// Goertzel returns the power of frequency freq in x relative to the total
// power of x, in 0..1 (1: x is a pure tone at freq).
func Goertzel(x []int16, freq float64, rate int) float64 {
	if len(x) == 0 {
		return 0
	}
	w := 2 * math.Pi * freq / float64(rate)
	coeff := 2 * math.Cos(w)
	var s1, s2, energy float64
	for _, v := range x {
		f := float64(v)
		energy += f * f
		s0 := f + coeff*s1 - s2
		s2, s1 = s1, s0
	}
	if energy == 0 {
		return 0
	}
	power := s1*s1 + s2*s2 - coeff*s1*s2
	// A pure tone of amplitude A over N samples gives power (A*N/2)^2 and
	// energy A^2*N/2, so the ratio below is 1 for a pure tone.
	return power / (energy * float64(len(x)) / 2)
}

// DominantFrequency returns the frequency among candidates with the most
// Goertzel power in x.
func DominantFrequency(x []int16, rate int, candidates ...float64) float64 {
	best, bestP := 0.0, -1.0
	for _, f := range candidates {
		if p := Goertzel(x, f, rate); p > bestP {
			best, bestP = f, p
		}
	}
	return best
}

// ToneSNR fits a sine of frequency freq (amplitude and phase free) to each
// block of blockLen samples of x and returns the ratio in dB of the fitted
// tone's power to the power of the residual, over all blocks. It measures how
// well a known tone survived a codec or a lossy path without needing the
// delay. Blocks that are almost silent are counted as all noise.
func ToneSNR(x []int16, freq float64, rate, blockLen int) float64 {
	var sig, noise float64
	w := 2 * math.Pi * freq / float64(rate)
	for start := 0; start+blockLen <= len(x); start += blockLen {
		b := x[start : start+blockLen]
		// least squares fit of a*cos + b*sin
		var cc, ss, cs, xc, xs float64
		for i, v := range b {
			c, s := math.Cos(w*float64(i)), math.Sin(w*float64(i))
			f := float64(v)
			cc += c * c
			ss += s * s
			cs += c * s
			xc += f * c
			xs += f * s
		}
		det := cc*ss - cs*cs
		if det == 0 {
			continue
		}
		a := (xc*ss - xs*cs) / det
		bb := (xs*cc - xc*cs) / det
		for i, v := range b {
			fit := a*math.Cos(w*float64(i)) + bb*math.Sin(w*float64(i))
			r := float64(v) - fit
			sig += fit * fit
			noise += r * r
		}
	}
	if noise == 0 {
		return math.Inf(1)
	}
	if sig == 0 {
		return math.Inf(-1)
	}
	return 10 * math.Log10(sig/noise)
}

// RMS returns the root mean square of x (in sample units).
func RMS(x []int16) float64 {
	if len(x) == 0 {
		return 0
	}
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(len(x)))
}

// Align finds the lag (in samples, 0..maxLag) at which ref best matches a
// part of got (got[lag+i] ~ ref[i]) using FFT cross-correlation, and returns
// the lag with the normalised correlation coefficient at that lag (-1..1),
// computed over the overlap.
func Align(ref, got []int16, maxLag int) (lag int, corr float64) {
	if len(ref) == 0 || len(got) == 0 {
		return 0, 0
	}
	if maxLag > len(got)-1 {
		maxLag = len(got) - 1
	}
	n := 1
	for n < len(ref)+len(got) {
		n <<= 1
	}
	a := make([]complex128, n)
	b := make([]complex128, n)
	for i, v := range got {
		a[i] = complex(float64(v), 0)
	}
	for i, v := range ref {
		b[i] = complex(float64(v), 0)
	}
	fft(a, false)
	fft(b, false)
	for i := range a {
		a[i] *= cmplx.Conj(b[i])
	}
	fft(a, true)
	best, bestV := 0, math.Inf(-1)
	for l := 0; l <= maxLag; l++ {
		if v := real(a[l]); v > bestV {
			best, bestV = l, v
		}
	}
	return best, Correlation(ref, got[best:])
}

// Correlation returns the normalised correlation coefficient of a and b over
// their common length (means removed).
func Correlation(a, b []int16) float64 {
	n := min(len(a), len(b))
	if n == 0 {
		return 0
	}
	var ma, mb float64
	for i := range n {
		ma += float64(a[i])
		mb += float64(b[i])
	}
	ma /= float64(n)
	mb /= float64(n)
	var ab, aa, bb float64
	for i := range n {
		x, y := float64(a[i])-ma, float64(b[i])-mb
		ab += x * y
		aa += x * x
		bb += y * y
	}
	if aa == 0 || bb == 0 {
		return 0
	}
	return ab / math.Sqrt(aa*bb)
}

// fft is an in-place radix-2 FFT; len(x) must be a power of two. With
// inverse it computes the unnormalised inverse transform.
func fft(x []complex128, inverse bool) {
	n := len(x)
	for i, j := 1, 0; i < n; i++ {
		bit := n >> 1
		for ; j&bit != 0; bit >>= 1 {
			j ^= bit
		}
		j ^= bit
		if i < j {
			x[i], x[j] = x[j], x[i]
		}
	}
	sign := -1.0
	if inverse {
		sign = 1
	}
	for size := 2; size <= n; size <<= 1 {
		step := cmplx.Rect(1, sign*2*math.Pi/float64(size))
		for start := 0; start < n; start += size {
			w := complex(1, 0)
			for k := 0; k < size/2; k++ {
				u := x[start+k]
				v := x[start+k+size/2] * w
				x[start+k] = u + v
				x[start+k+size/2] = u - v
				w *= step
			}
		}
	}
}

// TestSignal returns n samples of a deterministic speech-like test signal:
// a chirp-modulated mixture of tones with a syllable-like envelope, so that
// cross-correlation has a single clear peak. Seed varies the signal. Its
// fundamental (220-380 Hz) stays above the high-pass filter of Opus's VoIP
// mode, so a codec round trip keeps a correlation of about 0.97.
func TestSignal(n, rate int, seed uint32) []int16 {
	out := make([]int16, n)
	state := seed*2654435761 + 1
	rnd := func() float64 {
		state ^= state << 13
		state ^= state >> 17
		state ^= state << 5
		return float64(state)/float64(math.MaxUint32)*2 - 1
	}
	f0 := 300.0
	phase := [4]float64{}
	syl := rate / 5 // 200 ms syllables
	amp := 0.0
	for i := range out {
		if i%syl == 0 {
			f0 = 220 + 160*(rnd()+1)/2
			amp = 0.3 + 0.5*(rnd()+1)/2
		}
		env := math.Sin(math.Pi * float64(i%syl) / float64(syl))
		t := float64(i) / float64(rate)
		f := f0 * (1 + 0.1*math.Sin(2*math.Pi*3*t))
		var v float64
		for h := range phase {
			phase[h] += 2 * math.Pi * f * float64(h+1) / float64(rate)
			v += math.Sin(phase[h]) / float64(h+1)
		}
		out[i] = int16(9000 * amp * env * v)
	}
	return out
}

// WindowCorrelations cuts got into windows of win samples (skipping the
// first skip samples and windows quieter than RMS 100) and aligns each window
// independently against ref, returning each window's correlation and delay
// (got[n] ~ ref[n-delay]). Independent alignment tolerates the small time
// shifts a jitter buffer makes when it grows or shrinks. With maxDelay > 0
// only delays 0..maxDelay are searched (faster); otherwise all of ref is
// (ref should then hold the sent signal twice if the sender looped it).
func WindowCorrelations(ref, got []int16, win, skip, maxDelay int) (corrs []float64, delays []int) {
	for start := skip; start+win <= len(got); start += win {
		seg := got[start : start+win]
		if RMS(seg) < 100 {
			continue
		}
		lo, hi := 0, len(ref)
		if maxDelay > 0 {
			lo, hi = max(0, start-maxDelay), min(len(ref), start+win)
		}
		if hi-lo < win {
			continue
		}
		lag, c := Align(seg, ref[lo:hi], hi-lo-win)
		corrs = append(corrs, c)
		delays = append(delays, start-(lo+lag))
	}
	return corrs, delays
}

// Median returns the median of v (0 for none).
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s[len(s)/2]
}

// CorrToSNR converts a correlation coefficient between a reference and a
// received signal into the SNR in dB of the received signal, treating what
// is not explained by the (optimally scaled) reference as noise:
// SNR = c² / (1 - c²).
func CorrToSNR(c float64) float64 {
	if c >= 1 {
		return math.Inf(1)
	}
	if c <= 0 {
		return math.Inf(-1)
	}
	return 10 * math.Log10(c*c/(1-c*c))
}

// SNR returns the SNR in dB of got against ref over their common length,
// after scaling ref optimally (both must already be aligned).
func SNR(ref, got []int16) float64 { return CorrToSNR(Correlation(ref, got)) }
