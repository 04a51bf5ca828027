//! `impl SyncRelations for Relation`: the foreign keys and junctions of an entity as graph edges.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::Ident;
use syn::spanned::Spanned;

use crate::plan::RelationsPlan;
use crate::relation::RelationKind;

/// The `SyncRelations` impl of a valid entity.
pub fn expand(ident: &Ident, plan: &RelationsPlan) -> TokenStream {
    let graph = quote!(::morango::__private::graph);
    let edges = plan.relations.iter().filter_map(|relation| {
        let field = &relation.name;
        let (kind, target) = match &relation.kind {
            RelationKind::BelongsTo(ty) => {
                (quote!(BelongsTo), quote_spanned!(ty.span()=> <#ty as ::morango::Syncable>::NODE))
            }
            RelationKind::SelfRef(span) => {
                (quote!(SelfRef), quote_spanned!(*span=> <Entity as ::morango::Syncable>::NODE))
            }
            RelationKind::Via(ty) => (quote!(Via), quote_spanned!(ty.span()=> #graph::junction::<#ty>())),
            RelationKind::Reverse => return None,
        };
        Some(quote!(#graph::Edge { kind: #graph::EdgeKind::#kind, field: #field, target: #target }))
    });
    quote! {
        #[automatically_derived]
        impl #graph::SyncRelations for #ident {
            const EDGES: &'static [#graph::Edge] = &[#(#edges),*];
        }
    }
}

/// The `SyncRelations` impl emitted when the relations have errors.
pub fn fallback(ident: &Ident) -> TokenStream {
    quote! {
        #[automatically_derived]
        impl ::morango::__private::graph::SyncRelations for #ident {
            const EDGES: &'static [::morango::__private::graph::Edge] = &[];
        }
    }
}
