//! Treemap layout: rectangles whose areas are proportional to weights, as square as the
//! squarified algorithm (Bruls, Huizing and van Wijk) makes them. Pure geometry: no SVG, no
//! report; the page draws what this computes.

/// An axis-aligned rectangle: top-left corner, width and height.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Rect {
    /// A rectangle at (`x`, `y`) of `w` by `h`.
    pub fn new(x: f64, y: f64, w: f64, h: f64) -> Self {
        Self { x, y, w, h }
    }

    pub fn area(&self) -> f64 {
        self.w * self.h
    }

    /// The same rectangle, shrunk by `left`, `top`, `right` and `bottom` (never below zero).
    pub fn inset(&self, left: f64, top: f64, right: f64, bottom: f64) -> Self {
        Self {
            x: self.x + left,
            y: self.y + top,
            w: (self.w - left - right).max(0.0),
            h: (self.h - top - bottom).max(0.0),
        }
    }

    /// Splits along the longer side: the first part takes `fraction` (0 to 1) of the area.
    pub fn split(&self, fraction: f64) -> (Self, Self) {
        let f = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        if self.w >= self.h {
            let w = self.w * f;
            (
                Self::new(self.x, self.y, w, self.h),
                Self::new(self.x + w, self.y, self.w - w, self.h),
            )
        } else {
            let h = self.h * f;
            (
                Self::new(self.x, self.y, self.w, h),
                Self::new(self.x, self.y + h, self.w, self.h - h),
            )
        }
    }
}

/// Lays `weights` out in `within`: one rectangle per weight, in the order given, each of area
/// `weight / sum * within.area()`. Zero, negative or non-finite weights get an empty rectangle
/// at `within`'s corner; so does every weight when `within` is empty.
pub fn squarify(weights: &[f64], within: Rect) -> Vec<Rect> {
    let mut out = vec![Rect::new(within.x, within.y, 0.0, 0.0); weights.len()];
    let valid = |w: f64| w.is_finite() && w > 0.0;
    let total: f64 = weights.iter().copied().filter(|&w| valid(w)).sum();
    if total <= 0.0 || within.area() <= 0.0 {
        return out;
    }
    // Largest first: the algorithm needs it for its aspect ratios.
    let mut order: Vec<usize> = (0..weights.len()).filter(|&i| valid(weights[i])).collect();
    order.sort_by(|&a, &b| weights[b].total_cmp(&weights[a]).then(a.cmp(&b)));
    let scale = within.area() / total;
    let areas: Vec<f64> = order.iter().map(|&i| weights[i] * scale).collect();
    let mut free = within;
    let mut start = 0;
    while start < areas.len() {
        let side = free.w.min(free.h);
        let mut end = start + 1;
        let mut best = worst(&areas[start..end], side);
        while end < areas.len() {
            let next = worst(&areas[start..=end], side);
            if next > best {
                break;
            }
            best = next;
            end += 1;
        }
        let placed = lay_row(&areas[start..end], &mut free, end == areas.len());
        for (k, rect) in placed.into_iter().enumerate() {
            out[order[start + k]] = rect;
        }
        start = end;
    }
    out
}

/// The worst aspect ratio of a row of `areas` laid along a side of length `side`.
fn worst(areas: &[f64], side: f64) -> f64 {
    let sum: f64 = areas.iter().sum();
    let (side2, sum2) = (side * side, sum * sum);
    areas
        .iter()
        .map(|&a| (side2 * a / sum2).max(sum2 / (side2 * a)))
        .fold(0.0, f64::max)
}

/// Places one row of `areas` along the shorter side of `free` and takes it out of `free`. The
/// last row fills what is left exactly (no gap from rounding).
fn lay_row(areas: &[f64], free: &mut Rect, last: bool) -> Vec<Rect> {
    let sum: f64 = areas.iter().sum();
    let mut placed = Vec::with_capacity(areas.len());
    if free.w >= free.h {
        // A column at the left.
        let width = if last { free.w } else { sum / free.h };
        let mut y = free.y;
        for &a in areas {
            let h = a / sum * free.h;
            placed.push(Rect::new(free.x, y, width, h));
            y += h;
        }
        free.x += width;
        free.w = (free.w - width).max(0.0);
    } else {
        // A row at the top.
        let height = if last { free.h } else { sum / free.w };
        let mut x = free.x;
        for &a in areas {
            let w = a / sum * free.w;
            placed.push(Rect::new(x, free.y, w, height));
            x += w;
        }
        free.y += height;
        free.h = (free.h - height).max(0.0);
    }
    placed
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-6;

    fn inside(r: &Rect, within: &Rect) -> bool {
        r.x >= within.x - EPS
            && r.y >= within.y - EPS
            && r.x + r.w <= within.x + within.w + EPS
            && r.y + r.h <= within.y + within.h + EPS
    }

    fn overlap(a: &Rect, b: &Rect) -> f64 {
        let w = (a.x + a.w).min(b.x + b.w) - a.x.max(b.x);
        let h = (a.y + a.h).min(b.y + b.h) - a.y.max(b.y);
        w.max(0.0) * h.max(0.0)
    }

    #[test]
    fn areas_are_proportional_inside_and_disjoint() {
        let within = Rect::new(10.0, 20.0, 600.0, 400.0);
        let weights = [6.0, 6.0, 4.0, 3.0, 2.0, 2.0, 1.0];
        let rects = squarify(&weights, within);
        let total: f64 = weights.iter().sum();
        for (w, r) in weights.iter().zip(&rects) {
            assert!((r.area() - w / total * within.area()).abs() < 1e-3, "{r:?}");
            assert!(inside(r, &within), "{r:?}");
        }
        for (i, a) in rects.iter().enumerate() {
            for b in &rects[i + 1..] {
                assert!(overlap(a, b) < 1e-3, "{a:?} {b:?}");
            }
        }
        let covered: f64 = rects.iter().map(Rect::area).sum();
        assert!((covered - within.area()).abs() < 1e-3);
    }

    /// The paper's example: equal weights in a square come out as squares.
    #[test]
    fn equal_weights_in_a_square_are_squares() {
        let rects = squarify(&[1.0; 4], Rect::new(0.0, 0.0, 100.0, 100.0));
        for r in rects {
            assert!(
                (r.w - 50.0).abs() < EPS && (r.h - 50.0).abs() < EPS,
                "{r:?}"
            );
        }
    }

    #[test]
    fn rectangles_stay_squarish() {
        let weights: Vec<f64> = (1..=30).map(|i| (i * i) as f64).collect();
        let rects = squarify(&weights, Rect::new(0.0, 0.0, 1000.0, 500.0));
        let worst = rects
            .iter()
            .map(|r| (r.w / r.h).max(r.h / r.w))
            .fold(0.0, f64::max);
        assert!(worst < 8.0, "worst aspect ratio {worst}");
    }

    #[test]
    fn the_input_order_is_kept_and_bad_weights_get_nothing() {
        let within = Rect::new(0.0, 0.0, 100.0, 50.0);
        let rects = squarify(&[1.0, 0.0, 3.0, f64::NAN, -2.0], within);
        assert_eq!(rects.len(), 5);
        assert!((rects[0].area() - 1250.0).abs() < 1e-6);
        assert!((rects[2].area() - 3750.0).abs() < 1e-6);
        for i in [1, 3, 4] {
            assert_eq!(rects[i].area(), 0.0);
        }
        assert!(squarify(&[0.0, 0.0], within)
            .iter()
            .all(|r| r.area() == 0.0));
        assert!(squarify(&[1.0], Rect::new(0.0, 0.0, 0.0, 10.0))
            .iter()
            .all(|r| r.area() == 0.0));
        assert!(squarify(&[], within).is_empty());
    }

    #[test]
    fn split_and_inset() {
        let r = Rect::new(0.0, 0.0, 200.0, 100.0);
        let (a, b) = r.split(0.25);
        assert_eq!(a, Rect::new(0.0, 0.0, 50.0, 100.0));
        assert_eq!(b, Rect::new(50.0, 0.0, 150.0, 100.0));
        let (a, b) = Rect::new(0.0, 0.0, 10.0, 40.0).split(2.0);
        assert_eq!((a.h, b.h), (40.0, 0.0));
        assert_eq!(
            r.inset(1.0, 16.0, 1.0, 1.0),
            Rect::new(1.0, 16.0, 198.0, 83.0)
        );
        assert_eq!(r.inset(150.0, 0.0, 150.0, 0.0).w, 0.0);
    }
}
