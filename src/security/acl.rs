//! Kafka's ACL model as data: resource types, pattern types, operations, permission types,
//! a resource pattern with its access control entries, and the filters of DescribeAcls and
//! DeleteAcls. Codes are the wire protocol's; names are those Kafka writes in ZooKeeper
//! (`"operation":"DescribeConfigs"`, `/kafka-acl/TransactionalId/...`).

use std::fmt;

/// The name of the one CLUSTER resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// A literal resource name that matches every resource of its type.
pub const WILDCARD_RESOURCE: &str = "*";
/// A principal that matches every user.
pub const WILDCARD_PRINCIPAL: &str = "User:*";
/// A host that matches every address.
pub const WILDCARD_HOST: &str = "*";

/// Kafka's `ResourceType` (ANY only in filters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceType {
    Any,
    Topic,
    Group,
    Cluster,
    TransactionalId,
    DelegationToken,
    User,
}

impl ResourceType {
    pub const CONCRETE: [ResourceType; 6] = [
        ResourceType::Topic,
        ResourceType::Group,
        ResourceType::Cluster,
        ResourceType::TransactionalId,
        ResourceType::DelegationToken,
        ResourceType::User,
    ];

    pub fn from_code(code: i8) -> Option<Self> {
        Some(match code {
            1 => ResourceType::Any,
            2 => ResourceType::Topic,
            3 => ResourceType::Group,
            4 => ResourceType::Cluster,
            5 => ResourceType::TransactionalId,
            6 => ResourceType::DelegationToken,
            7 => ResourceType::User,
            _ => return None,
        })
    }

    pub fn code(self) -> i8 {
        match self {
            ResourceType::Any => 1,
            ResourceType::Topic => 2,
            ResourceType::Group => 3,
            ResourceType::Cluster => 4,
            ResourceType::TransactionalId => 5,
            ResourceType::DelegationToken => 6,
            ResourceType::User => 7,
        }
    }

    /// The name in a ZooKeeper path (`SecurityUtils.resourceTypeName`).
    pub fn zk_name(self) -> &'static str {
        match self {
            ResourceType::Any => "Any",
            ResourceType::Topic => "Topic",
            ResourceType::Group => "Group",
            ResourceType::Cluster => "Cluster",
            ResourceType::TransactionalId => "TransactionalId",
            ResourceType::DelegationToken => "DelegationToken",
            ResourceType::User => "User",
        }
    }

    /// The Java enum's name (`TOPIC`), used by the extended change notifications.
    pub fn enum_name(self) -> &'static str {
        match self {
            ResourceType::Any => "ANY",
            ResourceType::Topic => "TOPIC",
            ResourceType::Group => "GROUP",
            ResourceType::Cluster => "CLUSTER",
            ResourceType::TransactionalId => "TRANSACTIONAL_ID",
            ResourceType::DelegationToken => "DELEGATION_TOKEN",
            ResourceType::User => "USER",
        }
    }

    /// Either spelling, any case (Kafka's `fromString` and `SecurityUtils.resourceType`).
    pub fn parse(name: &str) -> Option<Self> {
        let squashed: String = name
            .chars()
            .filter(|c| *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        Self::CONCRETE
            .into_iter()
            .chain([ResourceType::Any])
            .find(|t| t.zk_name().to_ascii_lowercase() == squashed)
    }

    /// The operations an ACL on this type can grant (`AclEntry.supportedOperations`), in
    /// code order: what `authorized_operations` fields are made of.
    pub fn supported_operations(self) -> &'static [AclOperation] {
        use AclOperation as O;
        match self {
            ResourceType::Topic => &[
                O::Read,
                O::Write,
                O::Create,
                O::Delete,
                O::Alter,
                O::Describe,
                O::DescribeConfigs,
                O::AlterConfigs,
            ],
            ResourceType::Group => &[
                O::Read,
                O::Delete,
                O::Describe,
                O::DescribeConfigs,
                O::AlterConfigs,
            ],
            ResourceType::Cluster => &[
                O::Create,
                O::Alter,
                O::Describe,
                O::ClusterAction,
                O::DescribeConfigs,
                O::AlterConfigs,
                O::IdempotentWrite,
            ],
            ResourceType::TransactionalId => &[O::Write, O::Describe],
            ResourceType::DelegationToken => &[O::Describe],
            ResourceType::User => &[O::CreateTokens, O::DescribeTokens],
            ResourceType::Any => &[],
        }
    }
}

/// Kafka's `PatternType` (ANY and MATCH only in filters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PatternType {
    Any,
    Match,
    Literal,
    Prefixed,
}

impl PatternType {
    pub fn from_code(code: i8) -> Option<Self> {
        Some(match code {
            1 => PatternType::Any,
            2 => PatternType::Match,
            3 => PatternType::Literal,
            4 => PatternType::Prefixed,
            _ => return None,
        })
    }

    pub fn code(self) -> i8 {
        match self {
            PatternType::Any => 1,
            PatternType::Match => 2,
            PatternType::Literal => 3,
            PatternType::Prefixed => 4,
        }
    }

    pub fn enum_name(self) -> &'static str {
        match self {
            PatternType::Any => "ANY",
            PatternType::Match => "MATCH",
            PatternType::Literal => "LITERAL",
            PatternType::Prefixed => "PREFIXED",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [
            PatternType::Any,
            PatternType::Match,
            PatternType::Literal,
            PatternType::Prefixed,
        ]
        .into_iter()
        .find(|p| p.enum_name().eq_ignore_ascii_case(name))
    }
}

/// Kafka's `AclOperation` (ANY only in filters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AclOperation {
    Any,
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
    CreateTokens,
    DescribeTokens,
}

impl AclOperation {
    const ALL_VALUES: [AclOperation; 14] = [
        AclOperation::Any,
        AclOperation::All,
        AclOperation::Read,
        AclOperation::Write,
        AclOperation::Create,
        AclOperation::Delete,
        AclOperation::Alter,
        AclOperation::Describe,
        AclOperation::ClusterAction,
        AclOperation::DescribeConfigs,
        AclOperation::AlterConfigs,
        AclOperation::IdempotentWrite,
        AclOperation::CreateTokens,
        AclOperation::DescribeTokens,
    ];

    pub fn from_code(code: i8) -> Option<Self> {
        Self::ALL_VALUES.into_iter().find(|o| o.code() == code)
    }

    pub fn code(self) -> i8 {
        match self {
            AclOperation::Any => 1,
            AclOperation::All => 2,
            AclOperation::Read => 3,
            AclOperation::Write => 4,
            AclOperation::Create => 5,
            AclOperation::Delete => 6,
            AclOperation::Alter => 7,
            AclOperation::Describe => 8,
            AclOperation::ClusterAction => 9,
            AclOperation::DescribeConfigs => 10,
            AclOperation::AlterConfigs => 11,
            AclOperation::IdempotentWrite => 12,
            AclOperation::CreateTokens => 13,
            AclOperation::DescribeTokens => 14,
        }
    }

    /// The name Kafka writes in an ACL znode (`SecurityUtils.operationName`).
    pub fn zk_name(self) -> &'static str {
        match self {
            AclOperation::Any => "Any",
            AclOperation::All => "All",
            AclOperation::Read => "Read",
            AclOperation::Write => "Write",
            AclOperation::Create => "Create",
            AclOperation::Delete => "Delete",
            AclOperation::Alter => "Alter",
            AclOperation::Describe => "Describe",
            AclOperation::ClusterAction => "ClusterAction",
            AclOperation::DescribeConfigs => "DescribeConfigs",
            AclOperation::AlterConfigs => "AlterConfigs",
            AclOperation::IdempotentWrite => "IdempotentWrite",
            AclOperation::CreateTokens => "CreateTokens",
            AclOperation::DescribeTokens => "DescribeTokens",
        }
    }

    /// `Read`, `READ`, `DESCRIBE_CONFIGS` or `DescribeConfigs`.
    pub fn parse(name: &str) -> Option<Self> {
        let squashed = name.replace('_', "").to_ascii_lowercase();
        Self::ALL_VALUES
            .into_iter()
            .find(|o| o.zk_name().to_ascii_lowercase() == squashed)
    }
}

/// Kafka's `AclPermissionType` (ANY only in filters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AclPermissionType {
    Any,
    Deny,
    Allow,
}

impl AclPermissionType {
    pub fn from_code(code: i8) -> Option<Self> {
        Some(match code {
            1 => AclPermissionType::Any,
            2 => AclPermissionType::Deny,
            3 => AclPermissionType::Allow,
            _ => return None,
        })
    }

    pub fn code(self) -> i8 {
        match self {
            AclPermissionType::Any => 1,
            AclPermissionType::Deny => 2,
            AclPermissionType::Allow => 3,
        }
    }

    pub fn zk_name(self) -> &'static str {
        match self {
            AclPermissionType::Any => "Any",
            AclPermissionType::Deny => "Deny",
            AclPermissionType::Allow => "Allow",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [
            AclPermissionType::Any,
            AclPermissionType::Deny,
            AclPermissionType::Allow,
        ]
        .into_iter()
        .find(|p| p.zk_name().eq_ignore_ascii_case(name))
    }
}

/// What an ACL applies to: a literal name (or `*`), or every name with a prefix.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourcePattern {
    pub resource_type: ResourceType,
    pub pattern_type: PatternType,
    pub name: String,
}

impl ResourcePattern {
    pub fn literal(resource_type: ResourceType, name: impl Into<String>) -> Self {
        ResourcePattern {
            resource_type,
            pattern_type: PatternType::Literal,
            name: name.into(),
        }
    }
}

impl fmt::Display for ResourcePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.resource_type.zk_name(),
            self.pattern_type.enum_name(),
            self.name
        )
    }
}

/// One ACL on a resource: who (`User:alice`, `User:*`), from where (an address or `*`),
/// which operation, allowed or denied.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccessControlEntry {
    pub principal: String,
    pub host: String,
    pub operation: AclOperation,
    pub permission_type: AclPermissionType,
}

/// DescribeAcls' and DeleteAcls' filter on the resource side. A `None` name matches any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourcePatternFilter {
    pub resource_type: ResourceType,
    pub pattern_type: PatternType,
    pub name: Option<String>,
}

impl ResourcePatternFilter {
    /// Kafka's `ResourcePatternFilter.matches`: MATCH finds every pattern that would apply
    /// to the named resource (the literal name, the `*` wildcard, each prefix of it).
    pub fn matches(&self, pattern: &ResourcePattern) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != pattern.resource_type {
            return false;
        }
        if !matches!(self.pattern_type, PatternType::Any | PatternType::Match)
            && self.pattern_type != pattern.pattern_type
        {
            return false;
        }
        let Some(name) = &self.name else {
            return true;
        };
        if self.pattern_type == PatternType::Any || self.pattern_type == pattern.pattern_type {
            return *name == pattern.name;
        }
        match pattern.pattern_type {
            PatternType::Literal => *name == pattern.name || pattern.name == WILDCARD_RESOURCE,
            PatternType::Prefixed => name.starts_with(&pattern.name),
            _ => false,
        }
    }

    /// The patterns this filter names exactly (LITERAL or PREFIXED with a name, ANY with a
    /// name: both), so a delete finds ACLs this broker has not loaded yet.
    pub fn exact_patterns(&self) -> Vec<ResourcePattern> {
        let Some(name) = &self.name else {
            return Vec::new();
        };
        if self.resource_type == ResourceType::Any {
            return Vec::new();
        }
        let types: &[PatternType] = match self.pattern_type {
            PatternType::Literal => &[PatternType::Literal],
            PatternType::Prefixed => &[PatternType::Prefixed],
            PatternType::Any => &[PatternType::Literal, PatternType::Prefixed],
            PatternType::Match => &[],
        };
        types
            .iter()
            .map(|p| ResourcePattern {
                resource_type: self.resource_type,
                pattern_type: *p,
                name: name.clone(),
            })
            .collect()
    }
}

/// The entry side of a filter: `None` and ANY match any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessControlEntryFilter {
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: AclOperation,
    pub permission_type: AclPermissionType,
}

impl AccessControlEntryFilter {
    pub fn matches(&self, entry: &AccessControlEntry) -> bool {
        self.principal
            .as_ref()
            .is_none_or(|p| *p == entry.principal)
            && self.host.as_ref().is_none_or(|h| *h == entry.host)
            && (self.operation == AclOperation::Any || self.operation == entry.operation)
            && (self.permission_type == AclPermissionType::Any
                || self.permission_type == entry.permission_type)
    }
}

/// A DescribeAcls or DeleteAcls filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclBindingFilter {
    pub pattern: ResourcePatternFilter,
    pub entry: AccessControlEntryFilter,
}

impl AclBindingFilter {
    pub fn matches(&self, pattern: &ResourcePattern, entry: &AccessControlEntry) -> bool {
        self.pattern.matches(pattern) && self.entry.matches(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_in_every_spelling_kafka_writes() {
        assert_eq!(
            AclOperation::parse("DescribeConfigs"),
            Some(AclOperation::DescribeConfigs)
        );
        assert_eq!(
            AclOperation::parse("DESCRIBE_CONFIGS"),
            Some(AclOperation::DescribeConfigs)
        );
        assert_eq!(AclOperation::parse("read"), Some(AclOperation::Read));
        assert_eq!(AclOperation::parse("Reed"), None);
        assert_eq!(
            ResourceType::parse("TRANSACTIONAL_ID"),
            Some(ResourceType::TransactionalId)
        );
        assert_eq!(
            ResourceType::parse("TransactionalId"),
            Some(ResourceType::TransactionalId)
        );
        assert_eq!(ResourceType::parse("Topic"), Some(ResourceType::Topic));
        assert_eq!(PatternType::parse("prefixed"), Some(PatternType::Prefixed));
        assert_eq!(
            AclPermissionType::parse("Deny"),
            Some(AclPermissionType::Deny)
        );
        for o in AclOperation::ALL_VALUES {
            assert_eq!(AclOperation::from_code(o.code()), Some(o));
            assert_eq!(AclOperation::parse(o.zk_name()), Some(o));
        }
    }

    #[test]
    fn match_filter_finds_literal_wildcard_and_prefixes() {
        let filter = ResourcePatternFilter {
            resource_type: ResourceType::Topic,
            pattern_type: PatternType::Match,
            name: Some("pre-1".into()),
        };
        let topic = |p, n: &str| ResourcePattern {
            resource_type: ResourceType::Topic,
            pattern_type: p,
            name: n.into(),
        };
        assert!(filter.matches(&topic(PatternType::Literal, "pre-1")));
        assert!(filter.matches(&topic(PatternType::Literal, "*")));
        assert!(filter.matches(&topic(PatternType::Prefixed, "pre-")));
        assert!(!filter.matches(&topic(PatternType::Prefixed, "pre-12")));
        assert!(!filter.matches(&topic(PatternType::Literal, "pre-")));
        let group = ResourcePattern::literal(ResourceType::Group, "pre-1");
        assert!(!filter.matches(&group));

        let any = ResourcePatternFilter {
            resource_type: ResourceType::Any,
            pattern_type: PatternType::Any,
            name: Some("pre-".into()),
        };
        assert!(any.matches(&topic(PatternType::Prefixed, "pre-")));
        assert!(!any.matches(&topic(PatternType::Literal, "*")));
    }
}
