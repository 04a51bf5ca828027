//! What a model whose attributes have errors still gets: a placeholder `Syncable` impl and node (which the graph
//! checks skip) and an empty `ActiveModelBehavior`, so the user sees only the errors that need fixing.

use proc_macro2::TokenStream;
use quote::quote;

use crate::plan::Fallback;

/// The placeholder impls.
pub fn expand(fallback: &Fallback<'_>) -> TokenStream {
    let model = fallback.model;
    let behavior = if fallback.custom_behavior { quote!() } else { super::behavior::empty() };
    let unreachable = quote!(::core::unreachable!("`#[derive(Syncable)]` reported an error"));
    quote! {
        #[automatically_derived]
        #[allow(unused_variables)]
        impl ::morango::Syncable for Entity {
            const MODEL_NAME: &'static str = "";
            const PROFILE: &'static str = "";
            const FIELDS: &'static [&'static str] = &[];
            const SYNCED_COLUMNS: &'static [&'static str] = &[];
            const LOCAL_COLUMNS: &'static [&'static str] = &[];
            const NODE: ::morango::__private::graph::NodeRef =
                ::morango::__private::graph::NodeRef::new(&__MORANGO_NODE);
            fn partition_template(
                model: &ActiveModel,
            ) -> ::core::result::Result<::std::string::String, ::morango::IdError> {
                #unreachable
            }
            fn source_id(
                model: &ActiveModel,
            ) -> ::core::result::Result<::core::option::Option<::std::string::String>, ::morango::IdError> {
                #unreachable
            }
            fn record_id(model: &#model) -> &str {
                #unreachable
            }
            fn bookkeeping(model: &ActiveModel) -> ::morango::Bookkeeping {
                #unreachable
            }
            fn set_bookkeeping(model: &mut ActiveModel, bookkeeping: ::morango::Bookkeeping) {
                #unreachable
            }
            fn to_record(model: &#model) -> ::morango::Record {
                #unreachable
            }
            fn from_record(record: &::morango::Record) -> ::core::result::Result<ActiveModel, ::morango::FieldErrors> {
                #unreachable
            }
        }

        #[doc(hidden)]
        pub static __MORANGO_NODE: ::morango::__private::graph::Node =
            ::morango::__private::graph::Node::new("", "", "", &[]);

        #behavior
    }
}
