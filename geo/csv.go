package geo

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// ReadRows reads a CIDR table from CSV: a header naming the columns, among
// prefix (required), region, country, continent, subdivision, lat and lon,
// then one row per network. Lines starting with # are comments. Errors
// name the source and line. A table of a million rows is far too long for
// the TOML configuration, and CSV is what IPAM exports give.
func ReadRows(r io.Reader, name string) ([]Row, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.ReuseRecord = true
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: header: %w", name, err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		switch h {
		case "prefix", "region", "country", "continent", "subdivision", "lat", "lon":
		default:
			return nil, fmt.Errorf("%s:1: unknown column %q (want prefix, region, country, continent, subdivision, lat, lon)", name, h)
		}
		col[h] = i
	}
	if _, ok := col["prefix"]; !ok {
		return nil, fmt.Errorf("%s:1: no prefix column", name)
	}
	_, hasLat := col["lat"]
	if _, hasLon := col["lon"]; hasLat != hasLon {
		return nil, fmt.Errorf("%s:1: give both lat and lon columns, or neither", name)
	}
	field := func(rec []string, c string) string {
		if i, ok := col[c]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var rows []Row
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		p, err := netip.ParsePrefix(field(rec, "prefix"))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		loc := Location{
			Region: field(rec, "region"), Country: field(rec, "country"),
			Continent: field(rec, "continent"), Subdivision: field(rec, "subdivision"),
		}
		if lat, lon := field(rec, "lat"), field(rec, "lon"); lat != "" || lon != "" {
			la, err1 := strconv.ParseFloat(lat, 64)
			lo, err2 := strconv.ParseFloat(lon, 64)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("%s:%d: lat %q and lon %q must both be numbers", name, line, lat, lon)
			}
			loc.Lat, loc.Lon, loc.HasCoords = la, lo, true
		}
		rows = append(rows, Row{Prefix: p, Location: loc})
	}
}
