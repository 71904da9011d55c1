//! `Cidr`: an IPv4 network block as the stack file writes it, host bits clear.

use std::fmt;
use std::ops::Deref;

use ipnet::Ipv4Net;

/// An IPv4 CIDR block whose host bits are clear (`10.0.0.0/16`, not
/// `10.0.0.1/16`): a network AWS accepts for a VPC or subnet.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr(Ipv4Net);

/// Why a string is not a [`Cidr`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CidrError {
    /// Not an IPv4 CIDR block at all.
    Malformed,
    /// A block, but with host bits set: `written` is the block as written.
    HostBitsSet { written: Ipv4Net },
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, CidrError> {
        let net: Ipv4Net = s.parse().map_err(|_| CidrError::Malformed)?;
        if net.trunc() != net {
            return Err(CidrError::HostBitsSet { written: net });
        }
        Ok(Cidr(net))
    }

    pub fn net(&self) -> Ipv4Net {
        self.0
    }

    /// Whether either block contains the other.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.0.contains(&other.0) || other.0.contains(&self.0)
    }

    /// The 2^`bits` equal blocks this one divides into, in address order.
    pub fn blocks(&self, bits: u8) -> Vec<Cidr> {
        self.0
            .subnets(self.0.prefix_len() + bits)
            .expect("prefix at most /28")
            .map(Cidr)
            .collect()
    }
}

impl Deref for Cidr {
    type Target = Ipv4Net;
    fn deref(&self) -> &Ipv4Net {
        &self.0
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_refuses_host_bits_and_garbage() {
        assert_eq!(
            Cidr::parse("10.0.0.0/16").unwrap().to_string(),
            "10.0.0.0/16"
        );
        assert_eq!(Cidr::parse("ten/16").unwrap_err(), CidrError::Malformed);
        assert_eq!(
            Cidr::parse("10.0.0.1/16").unwrap_err(),
            CidrError::HostBitsSet {
                written: "10.0.0.1/16".parse().unwrap()
            }
        );
        let vpc = Cidr::parse("10.0.0.0/16").unwrap();
        let blocks = vpc.blocks(4);
        assert_eq!(blocks.len(), 16);
        assert_eq!(blocks[8].to_string(), "10.0.128.0/20");
        assert!(vpc.overlaps(&blocks[3]) && blocks[3].overlaps(&vpc));
        assert!(!blocks[0].overlaps(&blocks[1]));
    }
}
