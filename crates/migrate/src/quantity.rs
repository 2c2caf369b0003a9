//! Byte values of Kubernetes resource quantities (`10Gi`, `10G`, `1.5Ti`, `1e9`), for capacity checks.

/// The number of bytes `quantity` stands for, rounded up; `None` when it is not a valid quantity.
pub fn quantity_bytes(quantity: &str) -> Option<u128> {
    let quantity = quantity.trim();
    let split = quantity
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(quantity.len());
    let (number, suffix) = quantity.split_at(split);
    let number: f64 = number.parse().ok()?;
    if number < 0.0 || !number.is_finite() {
        return None;
    }
    let multiplier: f64 = match suffix {
        "" => 1.0,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "m" => 1e-3,
        exponent if exponent.starts_with(['e', 'E']) => {
            let power: i32 = exponent.get(1..)?.parse().ok()?;
            10f64.powi(power)
        }
        _ => return None,
    };
    let bytes = (number * multiplier).ceil();
    // Bounded by the checks above; the float-to-int cast saturates anyway.
    (bytes < 1e36).then_some(bytes as u128)
}

#[cfg(test)]
mod tests {
    use super::quantity_bytes;

    #[test]
    fn binary_decimal_and_exponent_suffixes() {
        assert_eq!(quantity_bytes("1Gi"), Some(1 << 30));
        assert_eq!(quantity_bytes("10G"), Some(10_000_000_000));
        assert_eq!(quantity_bytes("1.5Ki"), Some(1536));
        assert_eq!(quantity_bytes("1e3"), Some(1000));
        assert_eq!(quantity_bytes("512"), Some(512));
        assert!(quantity_bytes("10G") < quantity_bytes("10Gi"));
        assert_eq!(quantity_bytes("ten"), None);
        assert_eq!(quantity_bytes("1Qi"), None);
    }
}
