//go:build ignore

// gen_icons draws the Teams app icons: a coin marked with a "t". color.png (192x192) is the
// gold coin on an opaque tokenpay-green square; outline.png (32x32) is the same mark in
// white on transparent, as Teams requires for its monochrome surfaces.
//
// Run from the manifest package: go generate ./manifest
package main

import (
	"flag"
	"image"
	"image/color"
	"image/png"
	"log"
	"math"
	"os"
	"path/filepath"
)

var (
	green    = color.NRGBA{0x1F, 0x5C, 0x4F, 0xFF} // the manifests' accent colour
	gold     = color.NRGBA{0xF2, 0xC9, 0x4C, 0xFF}
	darkGold = color.NRGBA{0xC9, 0x97, 0x2B, 0xFF}
	white    = color.NRGBA{0xFF, 0xFF, 0xFF, 0xFF}
)

// Shapes are in unit coordinates: (0,0) top left, (1,1) bottom right.
type shape func(x, y float64) bool

func disc(cx, cy, r float64) shape {
	return func(x, y float64) bool { return math.Hypot(x-cx, y-cy) <= r }
}

func ring(cx, cy, r, width float64) shape {
	return func(x, y float64) bool { return math.Abs(math.Hypot(x-cx, y-cy)-r) <= width/2 }
}

// stroke is a line segment with round ends and half-width w.
func stroke(x0, y0, x1, y1, w float64) shape {
	return func(x, y float64) bool {
		dx, dy := x1-x0, y1-y0
		t := ((x-x0)*dx + (y-y0)*dy) / (dx*dx + dy*dy)
		t = math.Max(0, math.Min(1, t))
		return math.Hypot(x-(x0+t*dx), y-(y0+t*dy)) <= w
	}
}

// hook is the quarter circle at the foot of the "t", curving from its stem to the right.
func hook(cx, cy, r, w float64) shape {
	return func(x, y float64) bool {
		return x <= cx && y >= cy && math.Abs(math.Hypot(x-cx, y-cy)-r) <= w
	}
}

func union(shapes ...shape) shape {
	return func(x, y float64) bool {
		for _, s := range shapes {
			if s(x, y) {
				return true
			}
		}
		return false
	}
}

// letterT is a lower-case "t" centred in the coin; w is the half-width of its strokes.
func letterT(w float64) shape {
	const stemX, top, bend, r = 0.47, 0.27, 0.60, 0.12
	return union(
		stroke(stemX, top, stemX, bend, w),
		stroke(0.35, 0.40, 0.63, 0.40, w*0.85),
		hook(stemX+r, bend, r, w),
		disc(stemX+r, bend+r, w), // round end of the hook
	)
}

// coverage is the share of a pixel's 8x8 sub-samples inside s: cheap anti-aliasing.
func coverage(s shape, px, py, size int) float64 {
	const n = 8
	in := 0
	for i := range n {
		for j := range n {
			x := (float64(px) + (float64(i)+0.5)/n) / float64(size)
			y := (float64(py) + (float64(j)+0.5)/n) / float64(size)
			if s(x, y) {
				in++
			}
		}
	}
	return float64(in) / (n * n)
}

func blend(under, over color.NRGBA, a float64) color.NRGBA {
	mix := func(u, o uint8) uint8 { return uint8(math.Round(float64(u)*(1-a) + float64(o)*a)) }
	return color.NRGBA{mix(under.R, over.R), mix(under.G, over.G), mix(under.B, over.B), 0xFF}
}

// colorIcon layers opaque colours, so every pixel stays fully opaque.
func colorIcon(size int) *image.NRGBA {
	layers := []struct {
		s shape
		c color.NRGBA
	}{
		{disc(0.5, 0.5, 0.40), darkGold},
		{disc(0.5, 0.5, 0.355), gold},
		{letterT(0.045), green},
	}
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	for py := range size {
		for px := range size {
			c := green
			for _, l := range layers {
				c = blend(c, l.c, coverage(l.s, px, py, size))
			}
			img.SetNRGBA(px, py, c)
		}
	}
	return img
}

// outlineIcon is white with coverage as alpha: Teams accepts only white and transparency.
func outlineIcon(size int) *image.NRGBA {
	mark := union(ring(0.5, 0.5, 0.43, 0.08), letterT(0.06))
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	for py := range size {
		for px := range size {
			c := white
			c.A = uint8(math.Round(255 * coverage(mark, px, py, size)))
			img.SetNRGBA(px, py, c)
		}
	}
	return img
}

func write(path string, img image.Image) {
	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(f, img); err != nil {
		log.Fatalf("encode %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		log.Fatalf("write %s: %v", path, err)
	}
}

func main() {
	dir := flag.String("dir", ".", "directory to write color.png and outline.png to")
	flag.Parse()
	write(filepath.Join(*dir, "color.png"), colorIcon(192))
	write(filepath.Join(*dir, "outline.png"), outlineIcon(32))
}
