//! Relations as Morango sees them: which ones are foreign keys, self references or many-to-many junctions.
//!
//! Dense format (`#[sea_orm::model]`): relation fields of `ModelEx` (`BelongsTo<..>`, `HasOne<..>`, `HasMany<..>`
//! with their `#[sea_orm(...)]`). Classic format: variants of `enum Relation` with `#[sea_orm(belongs_to = ..)]`.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{GenericArgument, Ident, LitStr, PathArguments, Type, TypePath};

use crate::attr::{self, SeaField};

/// One relation of a model.
pub struct Relation {
    /// The field or variant name, used in messages.
    pub name: String,
    /// What the relation means for sync.
    pub kind: RelationKind,
}

/// What a relation means for sync.
pub enum RelationKind {
    /// A foreign key to another entity; the type's tokens are spanned where the user wrote the target.
    BelongsTo(Type),
    /// A foreign key to this entity (a tree), spanned at `span`.
    SelfRef(Span),
    /// A many-to-many relation through the junction entity `super::<junction>::Entity`.
    Via(Type),
    /// The other side of a foreign key (`has_one` / `has_many`): nothing to sync or order.
    Reverse,
}

/// The wrapper of a dense-format relation field.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wrapper {
    BelongsTo,
    HasOne,
    HasMany,
}

/// The relation of a dense-format `ModelEx` field; `None` for a column.
pub fn from_dense_field(field: &syn::Field) -> Option<Relation> {
    let ident = field.ident.as_ref()?;
    let Type::Path(path) = &field.ty else { return None };
    let last = path.path.segments.last()?;
    let wrapper = match last.ident.to_string().as_str() {
        "BelongsTo" => Wrapper::BelongsTo,
        "HasOne" => Wrapper::HasOne,
        "HasMany" => Wrapper::HasMany,
        _ => return None,
    };
    let target = entity_argument(&last.arguments)?;
    let sea = attr::sea_field(&field.attrs);
    let is_fk = wrapper == Wrapper::BelongsTo
        || sea.belongs_to.is_some()
        || (sea.self_ref && sea.via.is_none() && sea.from && wrapper != Wrapper::HasMany);
    let kind = if let Some(via) = &sea.via {
        junction_entity(via).map_or(RelationKind::Reverse, RelationKind::Via)
    } else if is_fk && (sea.self_ref || is_self_entity(&target)) {
        RelationKind::SelfRef(target.span())
    } else if is_fk {
        RelationKind::BelongsTo(target)
    } else {
        RelationKind::Reverse
    };
    Some(Relation { name: crate::naming::field_name(ident), kind })
}

/// The relation of a classic `enum Relation` variant.
pub fn from_variant(variant: &syn::Variant) -> Relation {
    let sea: SeaField = attr::sea_field(&variant.attrs);
    let kind = match &sea.belongs_to {
        Some(Some(target)) => match target.parse::<Type>() {
            Ok(ty) if is_self_entity(&ty) => RelationKind::SelfRef(target.span()),
            Ok(ty) => RelationKind::BelongsTo(ty),
            Err(_) => RelationKind::Reverse, // SeaORM reports a malformed path
        },
        _ => RelationKind::Reverse,
    };
    Relation { name: variant.ident.to_string(), kind }
}

/// `X` of `<X>` or `<Option<X>>`.
fn entity_argument(arguments: &PathArguments) -> Option<Type> {
    let PathArguments::AngleBracketed(args) = arguments else { return None };
    let Some(GenericArgument::Type(ty)) = args.args.first() else { return None };
    if let Type::Path(TypePath { qself: None, path }) = ty
        && let Some(last) = path.segments.last()
        && last.ident == "Option"
        && let Some(inner) = entity_argument(&last.arguments)
    {
        return Some(inner);
    }
    Some(ty.clone())
}

/// `Entity`, `self::Entity` or `Self`: the entity of the module being derived.
pub fn is_self_entity(ty: &Type) -> bool {
    let Type::Path(TypePath { qself: None, path }) = ty else { return false };
    let names: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    matches!(
        names.iter().map(String::as_str).collect::<Vec<_>>().as_slice(),
        ["Entity"] | ["self", "Entity"] | ["Self"]
    )
}

/// `super::<junction>::Entity` for `via = "junction"` or `via = "junction::Relation"`, spanned at the literal.
fn junction_entity(via: &LitStr) -> Option<Type> {
    let path: syn::Path = via.parse().ok()?;
    let module = &path.segments.first()?.ident;
    let module = Ident::new(&module.to_string(), via.span());
    Some(syn::parse_quote_spanned!(via.span()=> super::#module::Entity))
}
