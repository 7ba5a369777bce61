package gslb

import "math"

// earthRadiusKm is the mean Earth radius (IUGG).
const earthRadiusKm = 6371.0088

// distanceKm is the great-circle distance by the haversine formula, exact
// enough for choosing the nearest region and cheap (no allocation).
func distanceKm(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	dLat := (lat2 - lat1) * rad
	dLon := (lon2 - lon1) * rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) +
		math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadiusKm * math.Asin(math.Min(1, math.Sqrt(a)))
}
