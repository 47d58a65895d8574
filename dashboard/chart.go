package dashboard

import (
	"fmt"
	"math"
	"strings"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// chart is a server-rendered SVG of requests (bars, left axis) and tokens
// (line, right axis) per day. Coordinates are preformatted strings. The
// overview draws it twice, wide and narrow, and CSS shows the one that
// fits, so axis labels stay readable and inside the drawing at any width.
type chart struct {
	ID          string // "wide" or "narrow", for element ids
	W, H        int
	Font        int    // axis label size in drawing units
	Left, Right string // x of the plot edges
	Top, Bottom string
	Grid        []gridLine
	Bars        []bar
	Line        string // polyline points
	Points      []point
	Labels      []label
	Desc        string
	Empty       bool
	RightAxisX  string
	MaxRequests int64
	MaxTokens   int64
}

type gridLine struct {
	Y, LeftLabel, RightLabel string
}

type bar struct {
	X, Y, W, H, Title string
}

type point struct {
	X, Y, Title string
}

type label struct {
	X, Y, Text string
}

// chartSpec is one drawing size of the chart.
type chartSpec struct {
	id         string
	w, h, font int
	labelEvery int // label every n-th day (always today)
}

var (
	wideChart   = chartSpec{id: "wide", w: 720, h: 250, font: 11, labelEvery: 2}
	narrowChart = chartSpec{id: "narrow", w: 360, h: 240, font: 12, labelEvery: 4}
)

const (
	chartTop  = 16.0
	gridLines = 4
	// charWidth is a generous average glyph width of the axis font, as a
	// fraction of its size, so a label is never wider than its margin.
	charWidth = 0.62
)

func buildChart(days []vault.DayUsage, spec chartSpec) chart {
	c := chart{ID: spec.id, W: spec.w, H: spec.h, Font: spec.font}
	var maxReq, maxTok int64
	for _, d := range days {
		maxReq = max(maxReq, d.Requests)
		maxTok = max(maxTok, totalTokens(d))
	}
	c.Empty = maxReq == 0
	reqScale := niceCeil(maxReq, gridLines)
	tokScale := niceCeil(maxTok, gridLines)
	c.MaxRequests, c.MaxTokens = reqScale, tokScale
	// The margins hold the widest label of each axis, plus a gap.
	font := float64(spec.font)
	leftW, rightW := 0, 0
	for i := 0; i <= gridLines; i++ {
		leftW = max(leftW, len(shortNumber(reqScale*int64(i)/gridLines)))
		rightW = max(rightW, len(shortNumber(tokScale*int64(i)/gridLines)))
	}
	chartLeft := math.Ceil(float64(leftW)*font*charWidth) + 12
	chartRight := math.Ceil(float64(rightW)*font*charWidth) + 12
	chartBottom := font*2 + 10
	// A day label is centred on its bar: keep the first and last inside.
	dayHalf := math.Ceil(6 * font * charWidth / 2)
	chartLeft, chartRight = max(chartLeft, dayHalf), max(chartRight, dayHalf)
	plotW := float64(spec.w) - chartLeft - chartRight
	plotH := float64(spec.h) - chartTop - chartBottom
	bottom := chartTop + plotH
	c.Left, c.Right = f1(chartLeft), f1(float64(spec.w)-chartRight)
	c.Top, c.Bottom = f1(chartTop), f1(bottom)
	c.RightAxisX = f1(float64(spec.w) - chartRight + 6)
	for i := 0; i <= gridLines; i++ {
		y := bottom - plotH*float64(i)/gridLines
		c.Grid = append(c.Grid, gridLine{
			Y:          f1(y),
			LeftLabel:  shortNumber(reqScale * int64(i) / gridLines),
			RightLabel: shortNumber(tokScale * int64(i) / gridLines),
		})
	}
	n := len(days)
	if n == 0 {
		return c
	}
	slot := plotW / float64(n)
	barW := slot * 0.56
	var pts []string
	var desc []string
	for i, d := range days {
		cx := chartLeft + slot*(float64(i)+0.5)
		h := plotH * float64(d.Requests) / float64(reqScale)
		day := d.Day.Format("Jan 2")
		tok := totalTokens(d)
		title := fmt.Sprintf("%s: %s request%s, %s tokens", day, number(d.Requests), plural(int(min(d.Requests, 2))), number(tok))
		if d.Errors > 0 {
			title += fmt.Sprintf(" (%s failed)", number(d.Errors))
		}
		c.Bars = append(c.Bars, bar{X: f1(cx - barW/2), Y: f1(bottom - h), W: f1(barW), H: f1(h), Title: title})
		ty := bottom - plotH*float64(tok)/float64(tokScale)
		pts = append(pts, f1(cx)+","+f1(ty))
		c.Points = append(c.Points, point{X: f1(cx), Y: f1(ty), Title: title})
		// Label every few days on the axis, always the last (today).
		if (n-1-i)%spec.labelEvery == 0 {
			c.Labels = append(c.Labels, label{X: f1(cx), Y: f1(bottom + font + 8), Text: day})
		}
		if d.Requests > 0 {
			desc = append(desc, title)
		}
	}
	c.Line = strings.Join(pts, " ")
	if len(desc) == 0 {
		c.Desc = "No requests in this period."
	} else {
		c.Desc = strings.Join(desc, "; ") + "."
	}
	return c
}

// niceCeil rounds v up to a value whose steps (v/steps) are 1, 2 or 5
// times a power of ten; at least steps.
func niceCeil(v int64, steps int64) int64 {
	if v <= 0 {
		return steps
	}
	step := float64(v) / float64(steps)
	mag := math.Pow(10, math.Floor(math.Log10(step)))
	var nice float64
	switch r := step / mag; {
	case r <= 1:
		nice = 1
	case r <= 2:
		nice = 2
	case r <= 5:
		nice = 5
	default:
		nice = 10
	}
	s := int64(math.Max(1, nice*mag))
	return s * steps
}

func f1(v float64) string {
	s := fmt.Sprintf("%.1f", v)
	return strings.TrimSuffix(s, ".0")
}
